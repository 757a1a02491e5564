export {
  type CommerceEvent,
  closingRecords,
  EVENT_TYPES,
  type GeneratedRecord,
  generate,
  geolocate,
  IP_RANGES,
  prng,
  validateEvent,
} from './generator.ts';
export { type Alert, cepJob, enrichmentJob, enrichmentServices, TOPICS } from './jobs.ts';
export { EVENTS_TABLE, OFFSETS_PROPERTY, startLakeSink } from './lake-sink.ts';
export {
  DEFAULT_EVENTS,
  type DemoOptions,
  type DemoReport,
  dailyPipeline,
  eventsSupervisorSpec,
  formatReport,
  PATTERN_FILE,
  type RunningDemo,
  readTopic,
  runDemo,
} from './run.ts';
