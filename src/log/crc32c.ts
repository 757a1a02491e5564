/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of Kafka record batches v2.
 *
 * Table-driven slicing: sixteen 256-entry tables (slicing-by-16, the slicing-by-8 scheme widened) let the
 * loop consume sixteen bytes per iteration, read as four aligned little-endian 32-bit words through an
 * Int32Array view. Measured on Node 24 about 1.6x the byte-at-a-time slicing-by-8 loop. Big-endian hosts
 * and the unaligned head and tail use the one-table byte loop.
 *
 * Where @node-rs/crc32 loads (prebuilt for the common platforms), ranges of NATIVE_MIN bytes or more go to its
 * hardware CRC-32C instead: 18-27 GB/s here against ~2 GB/s for the table loop, and every batch is checksummed
 * twice on its way into the log (written by the producer, checked by the partition).
 */
import { createRequire } from 'node:module';

const POLY = 0x82f63b78;
const SLICES = 16;

/** Table k (at k*256) advances a byte through k further zero bytes. */
const T = (() => {
  const table = new Int32Array(256 * SLICES);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    table[n] = c;
  }
  for (let t = 1; t < SLICES; t++) {
    for (let n = 0; n < 256; n++) {
      const prev = table[(t - 1) * 256 + n]!;
      table[t * 256 + n] = (prev >>> 8) ^ table[prev & 0xff]!;
    }
  }
  return table;
})();

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Below this many bytes the typed-array view costs more than it saves. */
const WORD_LOOP_MIN = 64;

/**
 * Continues a CRC-32C over `buf[start, end)`: pass the previous result as `crc` to checksum data in pieces
 * (start from 0). Returns the unsigned 32-bit checksum.
 */
export function crc32cPortable(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  let c = ~crc | 0;
  let i = start;
  if (LITTLE_ENDIAN && end - i >= WORD_LOOP_MIN) {
    while (((buf.byteOffset + i) & 3) !== 0) c = T[(c ^ buf[i++]!) & 0xff]! ^ (c >>> 8);
    const blocks = (end - i) >>> 4;
    const words = new Int32Array(buf.buffer, buf.byteOffset + i, blocks * 4);
    for (let w = 0; w < words.length; w += 4) {
      c ^= words[w]!;
      const d = words[w + 1]!;
      const e = words[w + 2]!;
      const f = words[w + 3]!;
      c =
        T[3840 + (c & 0xff)]! ^
        T[3584 + ((c >>> 8) & 0xff)]! ^
        T[3328 + ((c >>> 16) & 0xff)]! ^
        T[3072 + (c >>> 24)]! ^
        T[2816 + (d & 0xff)]! ^
        T[2560 + ((d >>> 8) & 0xff)]! ^
        T[2304 + ((d >>> 16) & 0xff)]! ^
        T[2048 + (d >>> 24)]! ^
        T[1792 + (e & 0xff)]! ^
        T[1536 + ((e >>> 8) & 0xff)]! ^
        T[1280 + ((e >>> 16) & 0xff)]! ^
        T[1024 + (e >>> 24)]! ^
        T[768 + (f & 0xff)]! ^
        T[512 + ((f >>> 8) & 0xff)]! ^
        T[256 + ((f >>> 16) & 0xff)]! ^
        T[f >>> 24]!;
    }
    i += blocks * 16;
  }
  while (i < end) c = T[(c ^ buf[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

type NativeCrc32c = (input: Uint8Array, initialState?: number) => number;
const native: NativeCrc32c | null = (() => {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc32c }).crc32c;
  } catch {
    return null; // no prebuilt binary for this platform: the portable loop serves
  }
})();
/** Below this many bytes the native call costs more than the table loop. */
const NATIVE_MIN = 256;

/** Whether crc32c uses the native (hardware) implementation for large ranges. */
export const crc32cNative = native !== null;

/**
 * Continues a CRC-32C over `buf[start, end)`: pass the previous result as `crc` to checksum data in pieces
 * (start from 0). Returns the unsigned 32-bit checksum.
 */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  if (native === null || end - start < NATIVE_MIN) return crc32cPortable(buf, start, end, crc);
  return native(buf.subarray(start, end), crc) >>> 0;
}
