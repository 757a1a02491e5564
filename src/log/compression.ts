/**
 * Record batch compression codecs, by Kafka's attribute numbering: gzip and zstd from node:zlib, snappy
 * from the `snappy` package, lz4 (frame format) from `lz4-napi`.
 *
 * Snappy: Java clients write the xerial stream framing (a 16-byte header, then length-prefixed raw
 * blocks); librdkafka and most others write one raw block. Decoding accepts both; encoding writes a raw
 * block, which every client reads (snappy-java falls back to raw when the xerial magic is absent).
 */
import zlib from 'node:zlib';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import snappy from 'snappy';
import { kafkaError } from '../core/index.ts';

export const COMPRESSION_TYPES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type CompressionType = (typeof COMPRESSION_TYPES)[number];

/** The codec number in the low three bits of a record batch's attributes. */
export function compressionCodec(type: CompressionType): number {
  return COMPRESSION_TYPES.indexOf(type);
}

export function compressionTypeOf(codec: number): CompressionType {
  const type = COMPRESSION_TYPES[codec];
  if (type === undefined) {
    throw kafkaError('UNSUPPORTED_COMPRESSION_TYPE', `unknown compression codec ${codec} in record batch attributes`);
  }
  return type;
}

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

function isXerial(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_BYTES && data.subarray(0, 8).equals(XERIAL_MAGIC);
}

function snappyUncompress(data: Buffer): Buffer {
  return snappy.uncompressSync(data, { asBuffer: true }) as Buffer;
}

/** Decodes xerial framing: header, then blocks of [int32 compressed length][raw snappy block]. */
function xerialUncompress(data: Buffer): Buffer {
  const blocks: Buffer[] = [];
  let pos = XERIAL_HEADER_BYTES;
  while (pos < data.length) {
    if (pos + 4 > data.length) throw new RangeError('truncated xerial snappy block length');
    const length = data.readInt32BE(pos);
    pos += 4;
    if (length < 0 || pos + length > data.length) throw new RangeError('truncated xerial snappy block');
    blocks.push(snappyUncompress(data.subarray(pos, pos + length)));
    pos += length;
  }
  return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks);
}

export function compress(type: CompressionType, data: Buffer): Buffer {
  switch (type) {
    case 'none':
      return data;
    case 'gzip':
      return zlib.gzipSync(data);
    case 'snappy':
      return snappy.compressSync(data);
    case 'lz4':
      return compressFrameSync(data);
    case 'zstd':
      return zlib.zstdCompressSync(data);
  }
}

/** Decompresses a batch's records section; corrupt input is a CORRUPT_MESSAGE error. */
export function decompress(type: CompressionType, data: Buffer): Buffer {
  try {
    switch (type) {
      case 'none':
        return data;
      case 'gzip':
        return zlib.gunzipSync(data);
      case 'snappy':
        return isXerial(data) ? xerialUncompress(data) : snappyUncompress(data);
      case 'lz4':
        return decompressFrameSync(data);
      case 'zstd':
        return zlib.zstdDecompressSync(data);
    }
  } catch (err) {
    throw kafkaError('CORRUPT_MESSAGE', `cannot decompress ${type} record batch: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Wraps raw snappy blocks in xerial framing, as Java clients write it (for tests and interop). */
export function xerialSnappyCompress(data: Buffer, blockSize = 32 * 1024): Buffer {
  const parts: Buffer[] = [XERIAL_MAGIC, Buffer.from([0, 0, 0, 1, 0, 0, 0, 1])];
  for (let pos = 0; pos < data.length; pos += blockSize) {
    const block = snappy.compressSync(data.subarray(pos, pos + blockSize));
    const length = Buffer.alloc(4);
    length.writeInt32BE(block.length);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}
