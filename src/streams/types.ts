/** A record as it flows between processors. `timestamp` is event time in epoch ms. */
export interface StreamRecord<K, V> {
  key: K;
  value: V;
  timestamp: number;
  headers: RecordHeaders;
}

/** Kafka record headers, in order (keys may repeat). Same shape as the log's `Header`. */
export type RecordHeaders = [key: string, value: Buffer][];

/** A KTable update: the new value and the value it replaced (null = absent / deleted). */
export interface Change<V> {
  newValue: V | null;
  oldValue: V | null;
}

/** A time window [start, end): end exclusive for tumbling/hopping; inclusive for session/sliding windows. */
export interface Window {
  readonly start: number;
  readonly end: number;
}

/** A key scoped to a window, the key type of every windowed aggregation's result. */
export interface Windowed<K> {
  key: K;
  window: Window;
}

export type KeyValue<K, V> = [key: K, value: V];

export function isChange(v: unknown): v is Change<unknown> {
  return typeof v === 'object' && v !== null && 'newValue' in v && 'oldValue' in v;
}
