export { type LogRunResult, runOnLog } from './bench.ts';
export { eventTime, queryOptions, RowCollector, runInMemory } from './driver.ts';
export {
  type Auction,
  type Bid,
  DEFAULT_CONFIG,
  type GeneratorConfig,
  type NexmarkEvent,
  NexmarkGenerator,
  type Person,
} from './generator.ts';
export {
  EVENTS_TOPIC,
  isUpdating,
  NEXMARK_EVENT_TIME,
  NEXMARK_QUERIES,
  type NexmarkQuery,
  nexmarkTopology,
  outputTopic,
  type QueryOptions,
  resultSchema,
  resultSerdes,
} from './queries.ts';
export { canonicalRows, type Row, referenceResults } from './reference.ts';
export { decodeEvent, encodeEvent, NexmarkEventSerde } from './serde.ts';
