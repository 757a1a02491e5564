import { murmur2, partitionForKey } from '../log/index.ts';

/** Kafka's default partitioner (the log's murmur2), so streams and producers agree on where a key goes. */
export function defaultPartition(key: Buffer, partitionCount: number): number {
  return partitionForKey(key, partitionCount);
}

export { murmur2 };
