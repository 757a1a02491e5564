export * from './dsl.ts';
export * from './nexmark/index.ts';
export { buildNexmarkTopology, NEXMARK_TOPOLOGY_MODULE } from './nexmark/topology-module.ts';
export type { OutRecord, TaskMetrics } from './node.ts';
export type {
  AsyncOptions,
  Cancellable,
  Partitioner,
  Processor,
  ProcessorContext,
  Timer,
  TimestampExtractor,
} from './ops.ts';
export { defaultPartition, murmur2 } from './partitioner.ts';
export {
  type AsyncStore,
  KafkaStreams,
  type StreamsConfig,
  type StreamsMetrics,
  type StreamsState,
  type UncaughtExceptionResponse,
} from './runtime.ts';
export { type AvroSerdeOptions, type Serde, Serdes } from './serdes.ts';
export { compileFilter, compileJobSpec, type FilterSpec, type JobSpec, jobSpecSchema, parseJobSpec } from './spec.ts';
export {
  type KeyValueStore,
  LmdbEnv,
  type ReadOnlyKeyValueStore,
  type ReadOnlySessionStore,
  type ReadOnlyWindowStore,
  type Session,
  type SessionStore,
  type WindowStore,
  type WindowStoreEntry,
} from './stores.ts';
export { changelogTopic, type EventTimeConfig, StreamTask } from './task.ts';
export {
  type TestDriverConfig,
  TestInputTopic,
  TestOutputTopic,
  type TestRecord,
  TopologyTestDriver,
} from './test-driver.ts';
export type { ThreadInfo, TopologySource, WorkerLog } from './threads.ts';
export { Topology, type TopologyDescription } from './topology.ts';
export type { Change, KeyValue, RecordHeaders, StreamRecord, Window, Windowed } from './types.ts';
export { type DurationLike, JoinWindows, SessionWindows, SlidingWindows, TimeWindows } from './windows.ts';
