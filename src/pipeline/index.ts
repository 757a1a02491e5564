export * from './checked-write.ts';
export * from './cron.ts';
export * from './governance.ts';
export * from './lineage.ts';
export {
  type CheckResult,
  type ColumnMetrics,
  DIMENSIONS,
  type Dimension,
  type QualityReport,
  type QualityScore,
  runChecks,
  scoreOf,
} from './quality.ts';
export * from './routes.ts';
export type { ColumnLineage, FieldRef } from './rules.ts';
export * from './runner.ts';
export * from './spec.ts';
export * from './store.ts';
export * from './streaming.ts';
