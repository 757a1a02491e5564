/** JSON with 64-bit ids kept as BigInt (Iceberg snapshot ids exceed 2^53). */

const BIGINT_KEYS = new Set([
  'snapshot-id',
  'parent-snapshot-id',
  'current-snapshot-id',
  'max-ref-age-ms',
  'max-snapshot-age-ms',
  'added-snapshot-id',
]);

/** Parses JSON, turning the integer values of snapshot-id-like keys into BigInt without precision loss. */
export function parseJson(text: string): unknown {
  return JSON.parse(text, function reviver(this: unknown, key: string, value: unknown, context?: { source?: string }) {
    if (typeof value === 'number' && context?.source !== undefined) {
      if (BIGINT_KEYS.has(key)) return BigInt(context.source);
      // any other integer beyond 2^53 (e.g. in snapshot-ids arrays) keeps its exact value
      if (!Number.isSafeInteger(value) && /^-?\d+$/.test(context.source)) return BigInt(context.source);
    }
    return value;
  } as (this: unknown, key: string, value: unknown) => unknown);
}

/** Stringifies JSON, writing BigInt values as exact JSON numbers. */
export function stringifyJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v === 'bigint') return (JSON as unknown as { rawJSON(s: string): unknown }).rawJSON(v.toString());
      if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
      return v;
    },
    indent,
  );
}
