import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type KeyValueStore,
  type Processor,
  type ProcessorContext,
  Serdes,
  StreamsBuilder,
  TopologyTestDriver,
} from '../../src/streams/index.ts';
import { fmt, S } from './helpers.ts';

test('Processor API: typed store, event-time timers, forward with headers, record metadata', () => {
  const b = new StreamsBuilder();
  b.addStateStore({ name: 'last-seen', type: 'keyValue' });
  // Emits "timeout" for a key when no record for it arrived within 100 ms of event time.
  class Timeout implements Processor<string, string, string, string> {
    private store!: KeyValueStore<string, number>;
    init(ctx: ProcessorContext<string, string>): void {
      this.store = ctx.getStateStore<KeyValueStore<string, number>>('last-seen');
    }
    process(rec: { key: string; value: string; timestamp: number }, ctx: ProcessorContext<string, string>): void {
      const prev = this.store.get(rec.key);
      if (prev !== null) ctx.deleteEventTimeTimer(prev + 100, rec.key);
      this.store.put(rec.key, rec.timestamp);
      ctx.registerEventTimeTimer(rec.timestamp + 100, rec.key);
      const meta = ctx.recordMetadata();
      ctx.forward({
        key: rec.key,
        value: `seen@${meta?.topic}:${meta?.offset}`,
        timestamp: rec.timestamp,
        headers: [['src', Buffer.from('p')]],
      });
    }
    onTimer(timer: { timestamp: number; key: unknown }, ctx: ProcessorContext<string, string>): void {
      assert.equal(ctx.recordMetadata(), null);
      ctx.forward({ key: String(timer.key), value: 'timeout', timestamp: timer.timestamp, headers: [] });
    }
  }
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .process(() => new Timeout(), 'last-seen')
    .to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  const out = d.createOutputTopic('out', S, S);
  input.pipeInput('a', 'x', 0);
  input.pipeInput('b', 'x', 50);
  input.pipeInput('a', 'x', 80); // pushes a's timeout to 180
  assert.deepEqual(out.readRecordsToList().map(fmt), ['a:seen@in:0@0', 'b:seen@in:1@50', 'a:seen@in:2@80']);
  input.pipeInput('c', 'x', 160);
  const got = out.readRecordsToList();
  assert.deepEqual(got.map(fmt), ['b:timeout@150', 'c:seen@in:3@160']);
  assert.equal(got[1]?.headers[0]?.[1].toString(), 'p');
  assert.equal(d.getKeyValueStore<string, number>('last-seen').get('a'), 80);
});

test('Processor API: punctuation on stream time and on wall-clock time; unconnected store is refused', () => {
  const b = new StreamsBuilder();
  b.addStateStore({ name: 'counts', type: 'keyValue' });
  b.addStateStore({ name: 'other', type: 'keyValue' });
  const calls: string[] = [];
  b.stream<string, string>('in', { keySerde: S, valueSerde: S }).process<string, string>(
    () => ({
      init(ctx) {
        assert.throws(() => ctx.getStateStore('other'), /not connected/);
        ctx.schedule(10, 'stream-time', (t) => calls.push(`stream@${t}`));
        ctx.schedule(1000, 'wall-clock', (t) => calls.push(`wall@${t}`));
        ctx.registerProcessingTimeTimer(1500, 'pt');
      },
      process() {},
      onTimer(t) {
        calls.push(`${t.kind}:${String(t.key)}@${t.timestamp}`);
      },
    }),
    'counts',
  );
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  input.pipeInput('k', 'v', 5);
  input.pipeInput('k', 'v', 10);
  input.pipeInput('k', 'v', 35); // one call per advance, like Kafka Streams
  d.advanceWallClockTime(999);
  d.advanceWallClockTime(1);
  d.advanceWallClockTime(600);
  assert.deepEqual(calls, ['stream@10', 'stream@35', 'wall@1000', 'processing-time:pt@1500']);
});

test('async enrichment (ordered): concurrency limit, timeout with fallback, input order kept', async () => {
  const b = new StreamsBuilder();
  let inFlight = 0;
  let maxInFlight = 0;
  const release = new Map<string, () => void>();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .mapValuesAsync(
      async (v, _k, signal) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          if (v === 'slow') {
            await new Promise<void>((_resolve, reject) => {
              signal.addEventListener('abort', () => reject(new Error('aborted')));
            });
          }
          if (v === 'fail') throw new Error('boom');
          await new Promise<void>((r) => release.set(v, r));
          return `${v}!`;
        } finally {
          inFlight--;
        }
      },
      { concurrency: 2, timeoutMs: 400, fallback: (v) => `${v}?`, mode: 'ordered' },
    )
    .to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  const out = d.createOutputTopic('out', S, S);
  for (const v of ['a', 'slow', 'fail', 'b']) input.pipeInput('k', v, 1);
  assert.equal(out.getQueueSize(), 0, 'nothing emitted synchronously');
  await new Promise((r) => setImmediate(r));
  release.get('a')?.();
  const started = Date.now();
  while (!release.has('b') && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 5));
  release.get('b')?.();
  await d.settle();
  assert.deepEqual(out.readValuesToList(), ['a!', 'slow?', 'fail?', 'b!']);
  assert.equal(maxInFlight, 2);
});

test('async enrichment (unordered) emits as calls complete; without fallback failures are skipped', async () => {
  const b = new StreamsBuilder();
  const gates = new Map<string, () => void>();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .mapValuesAsync(
      (v) =>
        new Promise<string>((resolve, reject) => {
          gates.set(v, () => (v === 'bad' ? reject(new Error('x')) : resolve(v.toUpperCase())));
        }),
      { mode: 'unordered' },
    )
    .to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  const out = d.createOutputTopic('out', S, S);
  for (const v of ['x', 'y', 'bad']) input.pipeInput('k', v, 1);
  gates.get('y')?.();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(out.readValuesToList(), ['Y']);
  gates.get('bad')?.();
  gates.get('x')?.();
  await d.settle();
  assert.deepEqual(out.readValuesToList(), ['X']);
  assert.equal(d.metrics.skippedRecords, 1);
});

test('async enrichment holds event time downstream so windows do not close under in-flight records', async () => {
  const b = new StreamsBuilder();
  const gates: (() => void)[] = [];
  const { TimeWindows, Suppressed } = await import('../../src/streams/index.ts');
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .mapValuesAsync((v) => new Promise<string>((r) => gates.push(() => r(v))))
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeWithNoGrace(10))
    .count()
    .suppress(Suppressed.untilWindowCloses())
    .toStream()
    .to('out', { keySerde: S, valueSerde: Serdes.Long() });
  const d = new TopologyTestDriver(b.build(), { eventTime: { maxOutOfOrderness: 0 } });
  const input = d.createInputTopic('in', S, S);
  input.pipeInput('k', 'a', 5);
  input.pipeInput('k', 'b', 25);
  for (const g of gates) g();
  await d.settle();
  const out = d.createOutputTopic('out', Serdes.Windowed(S), Serdes.Long()).readRecordsToList();
  assert.deepEqual(
    out.map((r) => `${r.key?.window.start}=${r.value}`),
    ['0=1'],
  );
  assert.equal(d.metrics.droppedRecords, 0);
});
