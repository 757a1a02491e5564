/**
 * Per-topic configuration: Kafka's names, defaults and validation. A topic stores only the keys set on it
 * (its overrides); the effective configuration is the log's defaults under the overrides.
 */
import { kafkaError } from '../core/index.ts';
import type { CleanupPolicy, TopicConfig } from './api.ts';

export type ResolvedTopicConfig = Required<TopicConfig>;

/** Kafka's defaults, except flush.ms: the page cache is flushed every second rather than never. */
export const KAFKA_TOPIC_DEFAULTS: ResolvedTopicConfig = {
  'cleanup.policy': 'delete',
  'retention.ms': 604_800_000,
  'retention.bytes': -1,
  'segment.bytes': 1_073_741_824,
  'segment.ms': 604_800_000,
  'segment.index.bytes': 10_485_760,
  'index.interval.bytes': 4096,
  'flush.messages': Number.MAX_SAFE_INTEGER,
  'flush.ms': 1000,
  'max.message.bytes': 1_048_588,
  'message.timestamp.type': 'CreateTime',
  'min.compaction.lag.ms': 0,
  'delete.retention.ms': 86_400_000,
  'min.cleanable.dirty.ratio': 0.5,
  'compression.type': 'producer',
};

type Key = keyof TopicConfig;
const INT_MIN: Partial<Record<Key, number>> = {
  'retention.ms': -1,
  'retention.bytes': -1,
  'segment.bytes': 14,
  'segment.ms': 1,
  'segment.index.bytes': 8,
  'index.interval.bytes': 0,
  'flush.messages': 1,
  'flush.ms': 0,
  'max.message.bytes': 0,
  'min.compaction.lag.ms': 0,
  'delete.retention.ms': 0,
};
const CLEANUP_POLICIES: readonly CleanupPolicy[] = ['delete', 'compact', 'compact,delete'];
const COMPRESSION_CONFIG = ['producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd'];
const TIMESTAMP_TYPES = ['CreateTime', 'LogAppendTime'];
export const TOPIC_CONFIG_KEYS = Object.keys(KAFKA_TOPIC_DEFAULTS) as Key[];

function invalidConfig(key: string, expected: string, got: unknown): Error {
  return kafkaError('INVALID_CONFIG', `topic config ${key}: expected ${expected}, got ${JSON.stringify(got)}`, {
    field: key,
  });
}

/**
 * Checks a partial configuration and returns it normalized (numeric strings become numbers,
 * 'delete,compact' becomes 'compact,delete'). Keys set to undefined are kept: `alterTopicConfig` reads them
 * as "back to the default". Unknown keys and bad values throw INVALID_CONFIG.
 */
export function validateTopicConfig(config: Record<string, unknown>): TopicConfig {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(config)) {
    if (!(key in KAFKA_TOPIC_DEFAULTS)) throw invalidConfig(key, `one of ${TOPIC_CONFIG_KEYS.join(', ')}`, key);
    if (raw === undefined || raw === null) {
      out[key] = undefined;
      continue;
    }
    const k = key as Key;
    const min = INT_MIN[k];
    if (min !== undefined) {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < min)
        throw invalidConfig(key, `an integer >= ${min}`, raw);
      // Kafka's Long.MAX_VALUE ("never") arrives as a string larger than any safe integer
      out[key] = Math.min(n, Number.MAX_SAFE_INTEGER);
    } else if (k === 'min.cleanable.dirty.ratio') {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !(n >= 0 && n <= 1)) throw invalidConfig(key, 'a number between 0 and 1', raw);
      out[key] = n;
    } else if (k === 'cleanup.policy') {
      const parts = typeof raw === 'string' ? [...new Set(raw.split(',').map((p) => p.trim()))].sort() : [];
      const policy = parts.join(',');
      if (!CLEANUP_POLICIES.includes(policy as CleanupPolicy)) throw invalidConfig(key, 'delete, compact or both', raw);
      out[key] = policy;
    } else if (k === 'compression.type') {
      if (typeof raw !== 'string' || !COMPRESSION_CONFIG.includes(raw)) {
        throw invalidConfig(key, `one of ${COMPRESSION_CONFIG.join(', ')}`, raw);
      }
      out[key] = raw;
    } else if (k === 'message.timestamp.type') {
      if (typeof raw !== 'string' || !TIMESTAMP_TYPES.includes(raw))
        throw invalidConfig(key, 'CreateTime or LogAppendTime', raw);
      out[key] = raw;
    }
  }
  return out as TopicConfig;
}

/** Drops keys whose value is undefined. */
export function definedEntries(config: TopicConfig): TopicConfig {
  return Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) as TopicConfig;
}

export function resolveTopicConfig(defaults: ResolvedTopicConfig, overrides: TopicConfig): ResolvedTopicConfig {
  return { ...defaults, ...definedEntries(overrides) };
}

export function hasCompaction(config: ResolvedTopicConfig): boolean {
  return config['cleanup.policy'].includes('compact');
}

export function hasDeletion(config: ResolvedTopicConfig): boolean {
  return config['cleanup.policy'].includes('delete');
}

const LEGAL_TOPIC = /^[a-zA-Z0-9._-]+$/;
export const MAX_TOPIC_NAME_LENGTH = 249;

/** Kafka's topic name rules; throws INVALID_TOPIC_EXCEPTION. */
export function validateTopicName(name: unknown): asserts name is string {
  const bad = (why: string) =>
    kafkaError('INVALID_TOPIC_EXCEPTION', `topic name ${JSON.stringify(name)} ${why}`, { field: 'name' });
  if (typeof name !== 'string' || name.length === 0) throw bad('must be a non-empty string');
  if (name === '.' || name === '..') throw bad('cannot be "." or ".."');
  if (name.length > MAX_TOPIC_NAME_LENGTH) throw bad(`is longer than ${MAX_TOPIC_NAME_LENGTH} characters`);
  if (!LEGAL_TOPIC.test(name)) throw bad('may contain only ASCII letters, digits, ".", "_" and "-"');
}

export const INTERNAL_TOPICS: ReadonlySet<string> = new Set(['__consumer_offsets', '__transaction_state']);
