/**
 * Sketch finalization. The mergeable state lives in DuckDB list columns (see columns.ts); merging is a
 * list union in SQL, and these functions turn a merged state into an estimate.
 *
 * Error bounds (documented in docs/olap.md, tested in test/olap/sketches.test.ts):
 *  - theta (KMV with k = size, default 16384): exact below k distinct values; above, relative standard
 *    error about 1/sqrt(k - 2) (0.8% at k = 16384).
 *  - HLL (lgK = 12, 4096 registers, 26-bit coupons): exact up to 512 distinct values (coupon list mode,
 *    like DataSketches' LIST/SET modes); above, relative standard error about 1.04/sqrt(4096) = 1.6%.
 *  - quantilesDoublesSketch (k, default 128): exact up to 2k values per ingested row; above, the sorted values are
 *    cut into blocks of 2^j (the smallest power of two leaving at most 2k blocks) and each block is kept as its
 *    middle value weighted by the block size (rank error <= 1/2k). Merges (query time, streaming persist,
 *    compaction: `druid_qs_merge`) keep at most 2k items: above that, the weighted items are grouped by the cell
 *    of width N/2k where their rank span starts, and each group keeps its weighted median, adding at most 1/2k.
 *    So a query over stored rows is within 1/k; each further compacting merge level adds <= 1/2k. N stays exact.
 */

const TWO64 = 2 ** 64;

export interface ThetaState {
  kind: 'theta';
  /** Sorted ascending, distinct, at most k. */
  hashes: bigint[];
  k: number;
}

export interface HllState {
  kind: 'hll';
  entries: number[];
  flavor: 'sketch' | 'hyperUnique' | 'cardinality';
  round: boolean;
}

export interface QuantilesState {
  kind: 'quantiles';
  /** Sorted ascending, with a weight per value (the number of input values it stands for). */
  values: number[];
  weights: number[];
  k: number;
}

export function quantilesState(items: { v: number; w: bigint | number }[], k: number): QuantilesState {
  const sorted = [...items].sort((a, b) => a.v - b.v);
  return { kind: 'quantiles', values: sorted.map((x) => x.v), weights: sorted.map((x) => Number(x.w)), k };
}

export function count(s: QuantilesState): number {
  let n = 0;
  for (const w of s.weights) n += w;
  return n;
}

/** The fraction of the weight strictly below v. */
export function rank(s: QuantilesState, v: number): number {
  const n = count(s);
  if (n === 0) return Number.NaN;
  let below = 0;
  for (let i = 0; i < s.values.length && s.values[i]! < v; i++) below += s.weights[i]!;
  return below / n;
}

export type SketchState = ThetaState | HllState | QuantilesState;

export function isSketch(v: unknown): v is SketchState {
  return typeof v === 'object' && v !== null && 'kind' in v && typeof (v as { kind: unknown }).kind === 'string';
}

function thetaOf(s: ThetaState): number {
  return s.hashes.length >= s.k ? Number(s.hashes[s.k - 1]!) / TWO64 : 1;
}

export function thetaEstimate(s: ThetaState): number {
  if (s.hashes.length < s.k) return s.hashes.length;
  return (s.k - 1) / thetaOf(s);
}

/** Druid's thetaSketchSetOp: UNION, INTERSECT, NOT (a minus the rest). */
export function thetaSetOp(func: string, sketches: ThetaState[], k: number): ThetaState & { theta: number } {
  const theta = Math.min(1, ...sketches.map(thetaOf));
  const below = (s: ThetaState) => s.hashes.filter((h) => Number(h) / TWO64 < theta || theta === 1);
  let result: bigint[];
  if (func === 'INTERSECT') {
    const sets = sketches.slice(1).map((s) => new Set(below(s)));
    result = below(sketches[0]!).filter((h) => sets.every((set) => set.has(h)));
  } else if (func === 'NOT') {
    const rest = new Set(sketches.slice(1).flatMap(below));
    result = below(sketches[0]!).filter((h) => !rest.has(h));
  } else {
    result = [...new Set(sketches.flatMap(below))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
  return { kind: 'theta', hashes: result, k, theta };
}

export function thetaSetOpEstimate(s: ThetaState & { theta?: number }): number {
  if (s.theta === undefined) return thetaEstimate(s);
  return s.theta >= 1 ? s.hashes.length : s.hashes.length / s.theta;
}

const LG_K = 12;
const M = 1 << LG_K;
const COUPON_LIMIT = M / 8;

export function hllEstimate(s: HllState): number {
  const distinct = new Set(s.entries);
  if (distinct.size <= COUPON_LIMIT) return distinct.size;
  const reg = new Uint8Array(M);
  for (const e of distinct) {
    const b = e >>> (6 + 26 - LG_K);
    const r = e & 63;
    if (r > reg[b]!) reg[b] = r;
  }
  let sum = 0;
  let zeros = 0;
  for (let i = 0; i < M; i++) {
    sum += 2 ** -reg[i]!;
    if (reg[i] === 0) zeros++;
  }
  const alpha = 0.7213 / (1 + 1.079 / M);
  const raw = (alpha * M * M) / sum;
  if (raw <= 2.5 * M && zeros > 0) return M * Math.log(M / zeros);
  return raw;
}

/** The value at 0-based rank floor(fraction * N) of the weighted, sorted items. */
export function quantile(s: QuantilesState, fraction: number): number {
  const n = count(s);
  if (n === 0) return Number.NaN;
  const target = Math.min(n - 1, Math.max(0, Math.floor(fraction * n)));
  let cum = 0;
  for (let i = 0; i < s.values.length; i++) {
    cum += s.weights[i]!;
    if (cum > target) return s.values[i]!;
  }
  return s.values[s.values.length - 1]!;
}

export function cdf(s: QuantilesState, splits: number[]): number[] {
  const n = count(s);
  const counts = histogram(s, splits);
  let acc = 0;
  return counts.map((c) => {
    acc += c;
    return n === 0 ? Number.NaN : acc / n;
  });
}

/** Counts per bin: (-inf, s0), [s0, s1), ..., [sn, +inf). */
export function histogram(s: QuantilesState, splits: number[]): number[] {
  const out = new Array<number>(splits.length + 1).fill(0);
  s.values.forEach((v, j) => {
    let i = 0;
    while (i < splits.length && v >= splits[i]!) i++;
    out[i]! += s.weights[j]!;
  });
  return out;
}

/** The value Druid returns for a finalized aggregator: longs as bigint, doubles as number. */
export function finalizeSketch(s: SketchState): number | bigint {
  switch (s.kind) {
    case 'theta':
      return thetaSetOpEstimate(s);
    case 'hll': {
      const e = hllEstimate(s);
      return s.round ? BigInt(Math.round(e)) : e;
    }
    case 'quantiles':
      return BigInt(count(s));
  }
}

/** A compact binary form for scan results (Druid returns complex columns base64-encoded). */
export function sketchBase64(s: SketchState): string {
  if (s.kind === 'theta') {
    const b = Buffer.alloc(s.hashes.length * 8);
    for (let i = 0; i < s.hashes.length; i++) b.writeBigUInt64LE(s.hashes[i]!, i * 8);
    return b.toString('base64');
  }
  if (s.kind === 'hll') return Buffer.from(new Uint32Array(s.entries).buffer).toString('base64');
  return Buffer.from(new Float64Array(s.values.flatMap((v, i) => [v, s.weights[i]!])).buffer).toString('base64');
}
