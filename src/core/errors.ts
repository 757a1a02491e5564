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
