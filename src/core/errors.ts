/** The closed set of error codes every part of Tributary uses. */
export const ERROR_CODES = [
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'CONFLICT',
  'CORRUPT_DATA',
  'UNSUPPORTED',
  'TIMEOUT',
  'UNAVAILABLE',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'FENCED',
  'OUT_OF_ORDER',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const RETRIABLE_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set(['CONFLICT', 'TIMEOUT', 'UNAVAILABLE']);

export interface TributaryErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  /** Where the bad input was found, e.g. `topics[0].partitions`. */
  field?: string;
  /** The Kafka protocol error code a broker answers with (e.g. 45 OUT_OF_ORDER_SEQUENCE_NUMBER). */
  kafkaErrorCode?: number;
}

export class TributaryError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly field: string | undefined;
  readonly kafkaErrorCode: number | undefined;

  constructor(code: ErrorCode, message: string, options: TributaryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TributaryError';
    this.code = code;
    this.retriable = options.retriable ?? RETRIABLE_BY_DEFAULT.has(code);
    this.field = options.field;
    this.kafkaErrorCode = options.kafkaErrorCode;
  }
}

/** Bad input: names the field and what was expected. */
export function invalidArgument(field: string, expected: string, got?: unknown): TributaryError {
  const shown = got === undefined ? '' : `, got ${describeValue(got)}`;
  return new TributaryError('INVALID_ARGUMENT', `${field}: expected ${expected}${shown}`, { field });
}

export function notFound(what: string): TributaryError {
  return new TributaryError('NOT_FOUND', `${what} does not exist`);
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return 'an object';
}

export function isTributaryError(err: unknown, code?: ErrorCode): err is TributaryError {
  return err instanceof TributaryError && (code === undefined || err.code === code);
}

/**
 * Kafka protocol errors the log raises, by Kafka's name: each maps to one of our codes and sets
 * `kafkaErrorCode`, which the broker answers with.
 */
const KAFKA_ERRORS = {
  OFFSET_OUT_OF_RANGE: [1, 'INVALID_ARGUMENT'],
  CORRUPT_MESSAGE: [2, 'CORRUPT_DATA'],
  UNKNOWN_TOPIC_OR_PARTITION: [3, 'NOT_FOUND'],
  MESSAGE_TOO_LARGE: [10, 'INVALID_ARGUMENT'],
  INVALID_TOPIC_EXCEPTION: [17, 'INVALID_ARGUMENT'],
  TOPIC_ALREADY_EXISTS: [36, 'ALREADY_EXISTS'],
  INVALID_PARTITIONS: [37, 'INVALID_ARGUMENT'],
  INVALID_CONFIG: [40, 'INVALID_ARGUMENT'],
  OUT_OF_ORDER_SEQUENCE_NUMBER: [45, 'OUT_OF_ORDER'],
  DUPLICATE_SEQUENCE_NUMBER: [46, 'OUT_OF_ORDER'],
  INVALID_PRODUCER_EPOCH: [47, 'FENCED'],
  INVALID_TXN_STATE: [48, 'CONFLICT'],
  INVALID_PRODUCER_ID_MAPPING: [49, 'NOT_FOUND'],
  INVALID_TRANSACTION_TIMEOUT: [50, 'INVALID_ARGUMENT'],
  CONCURRENT_TRANSACTIONS: [51, 'CONFLICT'],
  UNKNOWN_PRODUCER_ID: [59, 'NOT_FOUND'],
  UNSUPPORTED_COMPRESSION_TYPE: [76, 'UNSUPPORTED'],
  INVALID_RECORD: [87, 'INVALID_ARGUMENT'],
  PRODUCER_FENCED: [90, 'FENCED'],
} as const satisfies Record<string, readonly [number, ErrorCode]>;

export type KafkaErrorName = keyof typeof KAFKA_ERRORS;

/** Kafka errors a client may retry as is (Kafka's RetriableException subclasses among the above). */
const KAFKA_RETRIABLE: ReadonlySet<KafkaErrorName> = new Set([
  'CORRUPT_MESSAGE',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'CONCURRENT_TRANSACTIONS',
]);

/** A `TributaryError` carrying the Kafka error code `name` (e.g. `kafkaError('OFFSET_OUT_OF_RANGE', ...)`). */
export function kafkaError(
  name: KafkaErrorName,
  message: string,
  options: Omit<TributaryErrorOptions, 'kafkaErrorCode'> = {},
): TributaryError {
  const [kafkaErrorCode, code] = KAFKA_ERRORS[name];
  return new TributaryError(code, message, {
    retriable: KAFKA_RETRIABLE.has(name),
    ...options,
    kafkaErrorCode,
  });
}
