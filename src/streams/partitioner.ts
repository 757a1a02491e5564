/** Kafka's default partitioner: murmur2 of the key bytes, positive, modulo the partition count. */
export function murmur2(data: Buffer): number {
  const m = 0x5bd1e995;
  const len = data.length;
  let h = (0x9747b28c ^ len) | 0;
  const n4 = len & ~3;
  for (let i = 0; i < n4; i += 4) {
    let k =
      (data[i]! & 0xff) | ((data[i + 1]! & 0xff) << 8) | ((data[i + 2]! & 0xff) << 16) | ((data[i + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rem = len & 3;
  if (rem === 3) h ^= (data[n4 + 2]! & 0xff) << 16;
  if (rem >= 2) h ^= (data[n4 + 1]! & 0xff) << 8;
  if (rem >= 1) {
    h ^= data[n4]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

export function defaultPartition(key: Buffer, partitionCount: number): number {
  return (murmur2(key) & 0x7fffffff) % partitionCount;
}
