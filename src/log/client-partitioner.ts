/**
 * Kafka's default partitioner: keyed records go to (murmur2(key) & 0x7fffffff) % partitions, exactly as the
 * Java client (and librdkafka's murmur2_random, kafkajs's DefaultPartitioner) place them, so a key lands on
 * the same partition whichever client produced it. Records without a key stick to one partition per batch.
 */

const M = 0x5bd1e995;

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit int. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The 1-3 tail bytes fold in from the highest down (Java's fall-through switch).
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Kafka's default partitioner picks for a non-null key. */
export function partitionForKey(key: Uint8Array, partitionCount: number): number {
  return (murmur2(key) & 0x7fffffff) % partitionCount;
}

/**
 * Null-key placement: stick to one partition until the producer finishes a batch for it, then move on
 * (Kafka's sticky partitioner), so null-key records still form large batches.
 */
export class StickyPartitioner {
  readonly #current = new Map<string, number>();

  partition(topic: string, partitionCount: number): number {
    let p = this.#current.get(topic);
    if (p === undefined || p >= partitionCount) {
      p = Math.floor(Math.random() * partitionCount);
      this.#current.set(topic, p);
    }
    return p;
  }

  /** Called when a batch for (topic, partition) was sealed: the next null-key records go elsewhere. */
  batchSealed(topic: string, partition: number, partitionCount: number): void {
    if (this.#current.get(topic) === partition && partitionCount > 1) {
      this.#current.set(topic, (partition + 1) % partitionCount);
    }
  }
}
