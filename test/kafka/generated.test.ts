import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  contains,
  elementType,
  type FieldSpec,
  generate,
  isEmpty,
  kebab,
  loadMessages,
  type MessageSpec,
  OUTPUT_DIR,
  REFERENCE_DIR,
  structName,
} from '../../scripts/generate-kafka-codecs.ts';
import { isTributaryError } from '../../src/core/index.ts';
import { type MessageCodec, Reader } from '../../src/kafka/wire.ts';

const haveReference = fs.existsSync(REFERENCE_DIR);
const skipReason = haveReference ? false : `Kafka message definitions not found at ${REFERENCE_DIR}`;

test('regenerating the codecs reproduces the committed files byte for byte', { skip: skipReason }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-codecs-'));
  try {
    const written = generate(REFERENCE_DIR, tmp);
    const committed = fs.readdirSync(OUTPUT_DIR).filter((f) => f.endsWith('.ts'));
    assert.deepEqual(written.map((f) => path.basename(f)).sort(), committed.sort());
    for (const file of committed) {
      const fresh = fs.readFileSync(path.join(tmp, file));
      const old = fs.readFileSync(path.join(OUTPUT_DIR, file));
      assert.ok(fresh.equals(old), `${file} differs from its regenerated version (run npm run generate:kafka)`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

type Module = Record<string, unknown>;

async function loadModule(spec: MessageSpec): Promise<Module> {
  return (await import(path.join(OUTPUT_DIR, `${kebab(spec.name)}.ts`))) as Module;
}

function primitiveArb(type: string): fc.Arbitrary<unknown> {
  switch (type) {
    case 'bool':
      return fc.boolean();
    case 'int8':
      return fc.integer({ min: -128, max: 127 });
    case 'int16':
      return fc.integer({ min: -32768, max: 32767 });
    case 'uint16':
      return fc.integer({ min: 0, max: 65535 });
    case 'int32':
      return fc.integer();
    case 'int64':
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'float64':
      return fc.double();
    case 'uuid':
      return fc.uuid();
    case 'string':
      return fc.string({ maxLength: 12 });
    default:
      return fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
  }
}

/** Random values for a struct at one version: fields absent in that version keep their defaults. */
function structArb(spec: MessageSpec, mod: Module, name: string, v: number, depth: number): fc.Arbitrary<unknown> {
  const struct = name === spec.name ? { tsName: spec.name, fields: spec.fields } : spec.structs.get(name)!;
  const makeDefault = mod[`default${struct.tsName}`] as () => Record<string, unknown>;
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of struct.fields) {
    if (!contains(f.versions, v)) continue;
    parts[f.jsName] = fieldArb(spec, mod, f, v, depth);
  }
  return fc.record(parts).map((values) => ({ ...makeDefault(), ...values }));
}

function typeArb(spec: MessageSpec, mod: Module, type: string, v: number, depth: number): fc.Arbitrary<unknown> {
  const el = elementType(type);
  if (el !== null) return fc.array(typeArb(spec, mod, el, v, depth + 1), { maxLength: depth > 2 ? 1 : 3 });
  if (structName(type) !== null) return structArb(spec, mod, type, v, depth + 1);
  return primitiveArb(type);
}

function fieldArb(spec: MessageSpec, mod: Module, f: FieldSpec, v: number, depth: number): fc.Arbitrary<unknown> {
  const arb = typeArb(spec, mod, f.type, v, depth);
  return contains(f.nullableVersions, v) ? fc.option(arb, { nil: null, freq: 4 }) : arb;
}

function versionsOf(spec: MessageSpec): number[] {
  const out: number[] = [];
  if (isEmpty(spec.validVersions)) return out;
  for (let v = spec.validVersions.lo; v <= spec.validVersions.hi; v++) out.push(v);
  return out;
}

const messages = haveReference ? loadMessages(REFERENCE_DIR) : [];

test('every message round-trips random values in every valid version', { skip: skipReason }, async () => {
  let checked = 0;
  for (const spec of messages) {
    const mod = await loadModule(spec);
    const codec = mod[`${spec.name}Codec`] as MessageCodec<unknown>;
    for (const v of versionsOf(spec)) {
      fc.assert(
        fc.property(structArb(spec, mod, spec.name, v, 0), (value) => {
          const bytes = codec.encode(v, value);
          const r = new Reader(bytes);
          const decoded = codec.decode(v, r);
          assert.equal(r.offset, bytes.length, `${spec.name} v${v}: decoder stopped before the end`);
          assert.deepStrictEqual(decoded, value, `${spec.name} v${v}`);
          // re-encoding the decoded value gives the same bytes
          assert.ok(codec.encode(v, decoded).equals(bytes), `${spec.name} v${v}: re-encoding differs`);
        }),
        { numRuns: 12 },
      );
      checked++;
    }
  }
  assert.ok(checked > 500, `checked ${checked} message versions`);
});

test('decoders reject random and truncated bytes with a TributaryError', { skip: skipReason }, async () => {
  for (const spec of messages) {
    const mod = await loadModule(spec);
    const codec = mod[`${spec.name}Codec`] as MessageCodec<unknown>;
    for (const v of versionsOf(spec)) {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
          try {
            codec.decode(v, new Reader(Buffer.from(bytes)));
          } catch (err) {
            assert.ok(isTributaryError(err), `${spec.name} v${v} threw ${String(err)}`);
          }
        }),
        { numRuns: 12 },
      );
      fc.assert(
        fc.property(structArb(spec, mod, spec.name, v, 0), fc.nat(), (value, cutSeed) => {
          const bytes = codec.encode(v, value);
          if (bytes.length === 0) return;
          const cut = cutSeed % bytes.length;
          assert.throws(
            () => codec.decode(v, new Reader(bytes.subarray(0, cut))),
            (err: unknown) => isTributaryError(err) && err.code === 'INVALID_ARGUMENT',
            `${spec.name} v${v} cut at ${cut} of ${bytes.length}`,
          );
        }),
        { numRuns: 6 },
      );
    }
  }
});

test('a decoder names the field it could not read', async () => {
  const mod = await import('../../src/kafka/generated/produce-request.ts');
  const bytes = mod.ProduceRequestCodec.encode(3, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 1000,
    topicData: [{ name: 'orders', partitionData: [{ index: 0, records: Buffer.alloc(10) }] }],
  });
  assert.throws(
    () => mod.ProduceRequestCodec.decode(3, new Reader(bytes.subarray(0, bytes.length - 4))),
    (err: unknown) => isTributaryError(err) && /PartitionProduceData\.records/.test(err.message),
  );
  assert.throws(
    () => mod.ProduceRequestCodec.decode(12, new Reader(bytes)),
    (err: unknown) => isTributaryError(err, 'UNSUPPORTED') && err.kafkaErrorCode === 35,
  );
});

test('flexible versions use compact strings, tagged fields and the non-compact header client id', async () => {
  const { RequestHeaderCodec } = await import('../../src/kafka/generated/request-header.ts');
  const bytes = RequestHeaderCodec.encode(2, {
    requestApiKey: 18,
    requestApiVersion: 3,
    correlationId: 7,
    clientId: 'ab',
  });
  // api key, version, correlation id, int16-length client id, empty tagged fields
  assert.deepEqual([...bytes], [0, 18, 0, 3, 0, 0, 0, 7, 0, 2, 97, 98, 0]);
  const { ApiVersionsRequestCodec } = await import('../../src/kafka/generated/api-versions-request.ts');
  const req = ApiVersionsRequestCodec.encode(3, { clientSoftwareName: 'x', clientSoftwareVersion: '1' });
  assert.deepEqual([...req], [2, 120, 2, 49, 0]);
  const { FetchResponseCodec } = await import('../../src/kafka/generated/fetch-response.ts');
  const withTag = FetchResponseCodec.encode(12, {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    responses: [
      {
        topic: 't',
        partitions: [
          {
            partitionIndex: 0,
            errorCode: 0,
            highWatermark: 5n,
            currentLeader: { leaderId: 1, leaderEpoch: 2 },
            abortedTransactions: null,
            records: null,
          },
        ],
      },
    ],
  });
  const decoded = FetchResponseCodec.decode(12, new Reader(withTag));
  assert.deepEqual(decoded.responses[0]?.partitions[0]?.currentLeader, { leaderId: 1, leaderEpoch: 2 });
  assert.equal(decoded.responses[0]?.partitions[0]?.lastStableOffset, -1n);
});
