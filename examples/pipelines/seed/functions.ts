// Custom functions the seed pipeline refers to as `functions.ts#name`.
import type { RecordBatch } from '../../../src/pipeline/index.ts';

/** Custom TypeScript rule over a record batch: flags large orders. */
export function tagLarge(rows: RecordBatch): RecordBatch {
  return rows.map((r) => ({ ...r, is_large: Number(r.amount) >= 400 }));
}
