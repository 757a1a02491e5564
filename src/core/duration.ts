import { invalidArgument } from './errors.ts';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a duration as milliseconds: a number (ms), `"500ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"7d"`,
 * or an ISO-8601 duration (`"PT5M"`, `"P1D"`).
 */
export function parseDuration(input: string | number, field = 'duration'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0)
      throw invalidArgument(field, 'a non-negative number of milliseconds', input);
    return input;
  }
  const text = input.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const iso = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(text);
  if (iso && text.length > 1 && !/T$/i.test(text)) {
    const [, w, d, h, m, s] = iso;
    return (
      Number(w ?? 0) * UNIT_MS.w! +
      Number(d ?? 0) * UNIT_MS.d! +
      Number(h ?? 0) * UNIT_MS.h! +
      Number(m ?? 0) * UNIT_MS.m! +
      Math.round(Number(s ?? 0) * 1000)
    );
  }
  const parts = text.matchAll(/(\d+(?:\.\d+)?)\s*(ms|sec|min|hr|s|m|h|d|w)/gi);
  let total = 0;
  let consumed = 0;
  for (const [whole, amount, unit] of parts) {
    total += Number(amount) * UNIT_MS[unit!.toLowerCase()]!;
    consumed += whole.length;
  }
  if (consumed === 0 || consumed !== text.replace(/\s+/g, '').length) {
    throw invalidArgument(field, 'a duration such as "500ms", "30s", "5m", "1h30m", "7d" or "PT5M"', input);
  }
  return Math.round(total);
}

/** Parses a size in bytes: a number, `"64KiB"`, `"1MB"`, `"1g"`. */
export function parseSize(input: string | number, field = 'size'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw invalidArgument(field, 'a non-negative number of bytes', input);
    return input;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$/i.exec(input);
  if (!match) throw invalidArgument(field, 'a size such as 1048576, "64KiB" or "1GB"', input);
  const power = ' kmgt'.indexOf(match[2]!.toLowerCase() || ' ');
  return Math.round(Number(match[1]) * 1024 ** power);
}
