import { type Table as ArrowTable, type Data, type DataType, Type, tableFromIPC } from 'apache-arrow';
import { instance as getVisitor } from 'apache-arrow/visitor/get';
import { invalidArgument } from '../core/index.ts';
import type { IcebergType } from './types.ts';
import { formatDate, formatDecimal, formatTime, formatTimestamp, type Row } from './values.ts';

export type { ArrowTable };

/** Structural check (not instanceof: a second copy of apache-arrow in node_modules must still work). */
export function isArrowTable(v: unknown): v is ArrowTable {
  if (v === null || typeof v !== 'object') return false;
  const t = v as { schema?: { fields?: unknown }; batches?: unknown; numRows?: unknown };
  return Array.isArray(t.schema?.fields) && Array.isArray(t.batches) && typeof t.numRows === 'number';
}

/** An Arrow Table, or IPC bytes in the stream or the file format. */
export function toArrowTable(input: ArrowTable | Uint8Array, what: string): ArrowTable {
  if (input instanceof Uint8Array) {
    let t: ArrowTable | undefined;
    let why = 'no schema message';
    try {
      t = tableFromIPC(input);
    } catch (err) {
      why = String(err);
    }
    // garbage bytes can parse as an empty stream: a table with no columns is no table
    if (!t || (t.schema.fields.length === 0 && input.length > 0))
      throw invalidArgument(what, 'Arrow IPC stream or file bytes', `${input.length} bytes that do not parse (${why})`);
    return t;
  }
  return input;
}

const NANOS: Record<number, bigint> = { 0: 1_000_000_000n, 1: 1_000_000n, 2: 1_000n, 3: 1n }; // TimeUnit -> ns per unit

/**
 * One value of an Arrow column as the public value the lake's writers accept. Timestamps, times and
 * decimals are read from the raw buffers, because Arrow's getters round them to JS numbers.
 */
function value(data: Data, i: number): unknown {
  if (!data.getValid(i)) return null;
  const t = data.type as DataType;
  // arrow-js slices value buffers (and struct children) with the Data, so indices are relative
  const at = i;
  switch (t.typeId) {
    case Type.Null:
      return null;
    case Type.Timestamp: {
      const raw = BigInt((data.values as BigInt64Array)[at] as bigint);
      const tz = (t as unknown as { timezone?: string | null }).timezone;
      return formatTimestamp(raw * (NANOS[(t as unknown as { unit: number }).unit] ?? 1n), !!tz, 1_000_000_000n);
    }
    case Type.Date: {
      if ((t as unknown as { unit: number }).unit === 0) return formatDate((data.values as Int32Array)[at] as number);
      return formatDate(Math.floor(Number(getVisitor.visit(data, i)) / 86_400_000));
    }
    case Type.Time: {
      const raw = BigInt(getVisitor.visit(data, i) as number | bigint);
      const ns = raw * (NANOS[(t as unknown as { unit: number }).unit] ?? 1n);
      return formatTime(ns / 1000n);
    }
    case Type.Decimal: {
      const d = t as unknown as { scale: number; bitWidth: number };
      const words = d.bitWidth / 32;
      const v32 = data.values as Uint32Array;
      let u = 0n;
      for (let w = words - 1; w >= 0; w--) u = (u << 32n) | BigInt(v32[at * words + w] as number);
      if (u >= 1n << BigInt(d.bitWidth - 1)) u -= 1n << BigInt(d.bitWidth);
      return formatDecimal(u, d.scale);
    }
    case Type.Int: {
      const v = getVisitor.visit(data, i);
      return (t as unknown as { bitWidth: number }).bitWidth === 64 ? BigInt(v as bigint) : v;
    }
    case Type.List:
    case Type.LargeList: {
      const offs = data.valueOffsets as Int32Array | BigInt64Array;
      const child = data.children[0] as Data;
      const out: unknown[] = [];
      for (let j = Number(offs[at]); j < Number(offs[at + 1]); j++) out.push(value(child, j));
      return out;
    }
    case Type.FixedSizeList: {
      const n = (t as unknown as { listSize: number }).listSize;
      const child = data.children[0] as Data;
      const out: unknown[] = [];
      for (let j = at * n; j < (at + 1) * n; j++) out.push(value(child, j));
      return out;
    }
    case Type.Struct: {
      const o: Row = {};
      t.children.forEach((f, k) => {
        o[f.name] = value(data.children[k] as Data, at);
      });
      return o;
    }
    case Type.Map: {
      const offs = data.valueOffsets as Int32Array;
      const entries = data.children[0] as Data;
      const out: { key: unknown; value: unknown }[] = [];
      for (let j = offs[at] as number; j < (offs[at + 1] as number); j++)
        out.push({
          key: value(entries.children[0] as Data, j),
          value: value(entries.children[1] as Data, j),
        });
      return out;
    }
    default: {
      const v = getVisitor.visit(data, i);
      // binary getters return views into the IPC buffer: copy so rows outlive it
      return v instanceof Uint8Array ? v.slice() : v;
    }
  }
}

/** A whole column chunk; plain numeric columns straight from their buffers (the common, hot case). */
function columnValues(data: Data): unknown[] {
  const t = data.type as DataType;
  const n = data.length;
  const out: unknown[] = new Array(n);
  const x = t as unknown as { bitWidth?: number; precision?: number };
  const plain = (t.typeId === Type.Int && x.bitWidth !== undefined) || (t.typeId === Type.Float && x.precision !== 0);
  if (plain && data.stride === 1) {
    const vals = data.values as ArrayLike<number | bigint>;
    const big = t.typeId === Type.Int && x.bitWidth === 64;
    const noNulls = data.nullCount === 0;
    for (let i = 0; i < n; i++) {
      if (!noNulls && !data.getValid(i)) out[i] = null;
      else out[i] = big ? BigInt(vals[i] as bigint) : Number(vals[i]);
    }
    return out;
  }
  for (let i = 0; i < n; i++) out[i] = value(data, i);
  return out;
}

/** Arrow Table -> public rows (the same shapes JS-row writes accept). */
export function arrowToRows(table: ArrowTable): Row[] {
  const names = table.schema.fields.map((f) => f.name);
  const rows: Row[] = [];
  for (const batch of table.batches) {
    const cols = names.map((_, k) => columnValues(batch.data.children[k] as Data));
    for (let i = 0; i < batch.numRows; i++) {
      const r: Row = {};
      for (let k = 0; k < names.length; k++) r[names[k] as string] = (cols[k] as unknown[])[i];
      rows.push(r);
    }
  }
  return rows;
}

/** The Iceberg type an Arrow column maps to (for unionByName); undefined for nested or exotic types. */
export function icebergTypeFromArrow(t: DataType): IcebergType | undefined {
  const x = t as unknown as {
    bitWidth?: number;
    unit?: number;
    timezone?: string | null;
    precision?: number;
    scale?: number;
  };
  switch (t.typeId) {
    case Type.Bool:
      return 'boolean';
    case Type.Int:
      return (x.bitWidth ?? 64) <= 32 &&
        !((x.bitWidth ?? 0) === 32 && !(t as unknown as { isSigned: boolean }).isSigned)
        ? 'int'
        : 'long';
    case Type.Float:
      return x.precision === 2 ? 'double' : 'float';
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Utf8View:
      return 'string';
    case Type.Binary:
    case Type.LargeBinary:
    case Type.BinaryView:
      return 'binary';
    case Type.Date:
      return 'date';
    case Type.Time:
      return 'time';
    case Type.Timestamp:
      return x.unit === 3 ? (x.timezone ? 'timestamptz_ns' : 'timestamp_ns') : x.timezone ? 'timestamptz' : 'timestamp';
    case Type.Decimal:
      return `decimal(${x.precision}, ${x.scale})`;
    case Type.Dictionary:
      return icebergTypeFromArrow((t as unknown as { dictionary: DataType }).dictionary);
    default:
      return undefined;
  }
}

/** Iceberg types of an Arrow table's columns, by name. */
export function arrowColumnTypes(table: ArrowTable): Map<string, IcebergType | undefined> {
  return new Map(table.schema.fields.map((f) => [f.name, icebergTypeFromArrow(f.type)]));
}
