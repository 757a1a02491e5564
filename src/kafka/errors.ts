import { TributaryError } from '../core/index.ts';

/** Kafka protocol error codes the broker answers with. */
export const KafkaError = {
  UNKNOWN_SERVER_ERROR: -1,
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  REQUEST_TIMED_OUT: 7,
  COORDINATOR_NOT_AVAILABLE: 15,
  INVALID_TOPIC_EXCEPTION: 17,
  INVALID_PRODUCER_EPOCH: 47,
  TOPIC_AUTHORIZATION_FAILED: 29,
  UNSUPPORTED_SASL_MECHANISM: 33,
  ILLEGAL_SASL_STATE: 34,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  SASL_AUTHENTICATION_FAILED: 58,
  GROUP_ID_NOT_FOUND: 69,
  MEMBER_ID_REQUIRED: 79,
} as const;

/**
 * The Kafka error code for an error thrown by the log: its `kafkaErrorCode` when set, else one derived
 * from the Tributary error code (`notFound` says which "not found" applies in the caller's context).
 */
export function toKafkaErrorCode(err: unknown, notFound: number = KafkaError.UNKNOWN_TOPIC_OR_PARTITION): number {
  if (!(err instanceof TributaryError)) {
    const code = (err as { kafkaErrorCode?: unknown } | null)?.kafkaErrorCode;
    return typeof code === 'number' ? code : KafkaError.UNKNOWN_SERVER_ERROR;
  }
  if (err.kafkaErrorCode !== undefined) return err.kafkaErrorCode;
  switch (err.code) {
    case 'NOT_FOUND':
      return notFound;
    case 'ALREADY_EXISTS':
      return KafkaError.TOPIC_ALREADY_EXISTS;
    case 'INVALID_ARGUMENT':
      return KafkaError.INVALID_REQUEST;
    case 'CORRUPT_DATA':
      return KafkaError.CORRUPT_MESSAGE;
    case 'UNSUPPORTED':
      return KafkaError.UNSUPPORTED_VERSION;
    case 'TIMEOUT':
      return KafkaError.REQUEST_TIMED_OUT;
    case 'UNAVAILABLE':
      return KafkaError.LEADER_NOT_AVAILABLE;
    case 'FENCED':
      return KafkaError.INVALID_PRODUCER_EPOCH;
    case 'OUT_OF_ORDER':
      return KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER;
    case 'UNAUTHENTICATED':
      return KafkaError.SASL_AUTHENTICATION_FAILED;
    case 'PERMISSION_DENIED':
      return KafkaError.TOPIC_AUTHORIZATION_FAILED;
    default:
      return KafkaError.UNKNOWN_SERVER_ERROR;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

export function isValidTopicName(name: string | null | undefined): name is string {
  return typeof name === 'string' && TOPIC_NAME.test(name) && name !== '.' && name !== '..';
}
