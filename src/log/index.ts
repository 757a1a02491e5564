export * from './api.ts';
export { type EmbeddedClientOptions, embeddedClient } from './client.ts';
export { murmur2, partitionForKey } from './client-partitioner.ts';
export * from './compression.ts';
export * from './crc32c.ts';
export { GroupCoordinator, type GroupCoordinatorOptions } from './groups.ts';
export { type CleanerReport, Log, type OpenLogOptions, openLog } from './log.ts';
export { connectLogPort, serveLogOnPort } from './port-log.ts';
export * from './record-batch.ts';
export {
  KAFKA_TOPIC_DEFAULTS,
  type ResolvedTopicConfig,
  TOPIC_CONFIG_KEYS,
  validateTopicConfig,
  validateTopicName,
} from './topic-config.ts';
