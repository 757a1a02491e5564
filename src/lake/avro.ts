import { deflateRawSync, inflateRawSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import avro from 'avsc';
import { bigIntLongTypeHook, TributaryError } from '../core/index.ts';

export function avroType(schema: unknown): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, { typeHook: bigIntLongTypeHook as never, wrapUnions: 'auto' });
}

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]);

function zigzag(n: number): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  v = v >= 0n ? v << 1n : (-v << 1n) - 1n;
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function readVarLong(buf: Buffer, pos: number): { value: number; pos: number } {
  let shift = 0n;
  let result = 0n;
  let p = pos;
  for (;;) {
    const b = buf[p++];
    if (b === undefined) throw new TributaryError('CORRUPT_DATA', 'avro: truncated varint');
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
    shift += 7n;
  }
  const v = result & 1n ? -((result + 1n) >> 1n) : result >> 1n;
  return { value: Number(v), pos: p };
}

const headerMetaType = avro.Type.forSchema({ type: 'map', values: 'bytes' });

export interface AvroFile {
  schema: unknown;
  metadata: Record<string, string>;
  records: Record<string, unknown>[];
}

/** Reads an Avro object container file (codecs: null, deflate, zstandard, snappy). */
export async function readAvroFile(data: Buffer, name = 'avro file'): Promise<AvroFile> {
  if (data.length < 4 || !data.subarray(0, 4).equals(MAGIC))
    throw new TributaryError('CORRUPT_DATA', `${name}: not an Avro container file`);
  const { value: meta, offset } = headerMetaType.decode(data, 4) as { value: Record<string, Buffer>; offset: number };
  if (offset < 0) throw new TributaryError('CORRUPT_DATA', `${name}: truncated Avro header`);
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) metadata[k] = v.toString('utf8');
  const schemaText = metadata['avro.schema'];
  if (!schemaText) throw new TributaryError('CORRUPT_DATA', `${name}: Avro header has no avro.schema`);
  const schema = JSON.parse(schemaText) as unknown;
  const codec = metadata['avro.codec'] ?? 'null';
  const type = avroType(schema);
  const sync = data.subarray(offset, offset + 16);
  let pos = offset + 16;
  const records: Record<string, unknown>[] = [];
  let snappy: { uncompressSync(b: Buffer): Buffer | string } | undefined;
  while (pos < data.length) {
    const count = readVarLong(data, pos);
    const size = readVarLong(data, count.pos);
    const start = size.pos;
    let block = data.subarray(start, start + size.value);
    if (codec === 'deflate') block = inflateRawSync(block);
    else if (codec === 'zstandard') block = zstdDecompressSync(block);
    else if (codec === 'snappy') {
      snappy ??= (await import('snappy')) as unknown as { uncompressSync(b: Buffer): Buffer };
      block = snappy.uncompressSync(block.subarray(0, block.length - 4)) as Buffer;
    } else if (codec !== 'null') throw new TributaryError('UNSUPPORTED', `${name}: Avro codec ${codec}`);
    let p = 0;
    for (let i = 0; i < count.value; i++) {
      const r = type.decode(block, p);
      if (r.offset < 0) throw new TributaryError('CORRUPT_DATA', `${name}: truncated Avro record`);
      records.push(r.value as Record<string, unknown>);
      p = r.offset;
    }
    pos = start + size.value;
    if (!data.subarray(pos, pos + 16).equals(sync))
      throw new TributaryError('CORRUPT_DATA', `${name}: Avro sync marker mismatch`);
    pos += 16;
  }
  return { schema, metadata, records };
}

/**
 * Writes an Avro object container file. The raw schema JSON goes into the header as given, so
 * Iceberg's field-id attributes survive (avsc would drop them if it re-serialized the type).
 */
export function writeAvroFile(
  schema: unknown,
  records: unknown[],
  metadata: Record<string, string>,
  codec: 'deflate' | 'null' | 'zstandard' = 'deflate',
): Buffer {
  const type = avroType(schema);
  const meta: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(metadata)) meta[k] = Buffer.from(v, 'utf8');
  meta['avro.schema'] = Buffer.from(JSON.stringify(schema), 'utf8');
  meta['avro.codec'] = Buffer.from(codec, 'utf8');
  const sync = Buffer.from(crypto.getRandomValues(new Uint8Array(16)));
  const parts: Buffer[] = [MAGIC, headerMetaType.toBuffer(meta), sync];
  const BLOCK = 4000;
  for (let i = 0; i < records.length; i += BLOCK) {
    const chunk = records.slice(i, i + BLOCK);
    let body = Buffer.concat(chunk.map((r) => type.toBuffer(r)));
    if (codec === 'deflate') body = deflateRawSync(body);
    else if (codec === 'zstandard') body = zstdCompressSync(body);
    parts.push(zigzag(chunk.length), zigzag(body.length), body, sync);
  }
  return Buffer.concat(parts);
}
