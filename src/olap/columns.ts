import type { AggregatorSpec, DimensionType } from './spec.ts';

/** How a stored column is represented, which decides how queries read it. */
export type ColumnKind =
  | 'time'
  | 'string'
  | 'mv' // multi-value string (VARCHAR[])
  | 'long'
  | 'float'
  | 'double'
  | 'json'
  | 'first' // STRUCT(t BIGINT, v T): first/last pairs
  | 'theta' // UBIGINT[]: the k smallest distinct 64-bit hashes
  | 'hll' // UINTEGER[]: distinct (bucket << 6 | rank) entries, lgK = 12
  | 'quantiles'; // STRUCT(v DOUBLE, w BIGINT)[]: weighted sorted items, at most 2k per ingested row

export interface ColumnInfo {
  name: string;
  kind: ColumnKind;
  /** The first/last value type, for kind 'first'. */
  valueKind?: 'long' | 'double' | 'float' | 'string';
  /** For metrics: the ingestion aggregator. */
  aggregator?: AggregatorSpec;
}

export const HLL_LG_K = 12;
export const THETA_DEFAULT_K = 16384;

export function sqlType(c: ColumnInfo): string {
  switch (c.kind) {
    case 'time':
      return 'TIMESTAMP';
    case 'string':
      return 'VARCHAR';
    case 'mv':
      return 'VARCHAR[]';
    case 'long':
      return 'BIGINT';
    case 'float':
      return 'FLOAT';
    case 'double':
      return 'DOUBLE';
    case 'json':
      return 'JSON';
    case 'first':
      return `STRUCT(t BIGINT, v ${c.valueKind === 'string' ? 'VARCHAR' : c.valueKind === 'long' ? 'BIGINT' : c.valueKind === 'float' ? 'FLOAT' : 'DOUBLE'})`;
    case 'theta':
      return 'UBIGINT[]';
    case 'hll':
      return 'UINTEGER[]';
    case 'quantiles':
      return 'STRUCT(v DOUBLE, w BIGINT)[]';
  }
}

export function dimKind(t: DimensionType): ColumnKind {
  return t;
}

/** The stored column a metric aggregator produces. */
export function metricColumn(a: AggregatorSpec): ColumnInfo {
  const t = a.type === 'filtered' ? a.aggregator!.type : a.type;
  const base = { name: a.name, aggregator: a };
  switch (t) {
    case 'count':
    case 'longSum':
    case 'longMin':
    case 'longMax':
      return { ...base, kind: 'long' };
    case 'doubleSum':
    case 'doubleMin':
    case 'doubleMax':
      return { ...base, kind: 'double' };
    case 'floatSum':
    case 'floatMin':
    case 'floatMax':
      return { ...base, kind: 'float' };
    case 'longFirst':
    case 'longLast':
      return { ...base, kind: 'first', valueKind: 'long' };
    case 'doubleFirst':
    case 'doubleLast':
      return { ...base, kind: 'first', valueKind: 'double' };
    case 'floatFirst':
    case 'floatLast':
      return { ...base, kind: 'first', valueKind: 'float' };
    case 'stringFirst':
    case 'stringLast':
      return { ...base, kind: 'first', valueKind: 'string' };
    case 'thetaSketch':
      return { ...base, kind: 'theta' };
    case 'hyperUnique':
    case 'HLLSketchBuild':
    case 'HLLSketchMerge':
    case 'cardinality':
      return { ...base, kind: 'hll' };
    case 'quantilesDoublesSketch':
      return { ...base, kind: 'quantiles' };
    default:
      return { ...base, kind: 'double' };
  }
}

/** Druid's type name for segmentMetadata and SQL metadata. */
export function druidType(c: ColumnInfo): string {
  switch (c.kind) {
    case 'time':
    case 'long':
      return 'LONG';
    case 'float':
      return 'FLOAT';
    case 'double':
      return 'DOUBLE';
    case 'string':
    case 'mv':
      return 'STRING';
    case 'json':
      return 'COMPLEX<json>';
    case 'first':
      return `COMPLEX<serializablePair${c.valueKind === 'string' ? 'LongString' : c.valueKind === 'long' ? 'LongLong' : 'LongDouble'}>`;
    case 'theta':
      return 'COMPLEX<thetaSketch>';
    case 'hll':
      return c.aggregator?.type === 'hyperUnique' ? 'COMPLEX<hyperUnique>' : 'COMPLEX<HLLSketch>';
    case 'quantiles':
      return 'COMPLEX<quantilesDoublesSketch>';
  }
}
