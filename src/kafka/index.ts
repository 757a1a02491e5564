export {
  type BrokerLogger,
  type KafkaBroker,
  type KafkaBrokerOptions,
  parseTopicConfigs,
  SUPPORTED_VERSIONS,
  startKafkaBroker,
} from './broker.ts';
export { quietLogger } from './broker-logger.ts';
export { isValidTopicName, KafkaError, toKafkaErrorCode } from './errors.ts';
export { type RemoteClientOptions, remoteClient } from './remote-client.ts';
export type { SaslMechanism, SaslOptions } from './sasl.ts';
export { type MessageCodec, Reader, Writer } from './wire.ts';
