export { dataLayout } from '../core/index.ts';
export { type AuthOptions, installBearerAuth } from './auth.ts';
export {
  type LoadConfigOptions,
  loadConfig,
  platformOptions,
  readConfigFile,
  SETTINGS,
  type ServerConfig,
  type ServerConfigInput,
  serverConfigSchema,
} from './config.ts';
export { formatReport, runDemo } from './demo/index.ts';
export {
  type Alert,
  type JobDetail,
  type JobKind,
  JobManager,
  type JobManagerOptions,
  type JobMetrics,
  type JobRecord,
  type JobState,
  type JobSummary,
  type PatternJobSpec,
  parseId,
  patternJobSchema,
} from './jobs.ts';
export { jobsRoutes, registerJobMetrics } from './jobs-routes.ts';
export { type Platform, type PlatformOptions, startPlatform } from './platform.ts';
