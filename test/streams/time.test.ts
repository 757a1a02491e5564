import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type EventTimeConfig,
  Serdes,
  StreamsBuilder,
  Suppressed,
  TimeWindows,
  TopologyTestDriver,
} from '../../src/streams/index.ts';
import { readWindowed, S, windowedString } from './helpers.ts';

const L = Serdes.Long();

/** Two inputs, one windowed count over both with final results only. */
function finalCounts(eventTime: EventTimeConfig | undefined, extract = false, size = 10) {
  const b = new StreamsBuilder();
  const opts = {
    keySerde: S,
    valueSerde: S,
    ...(extract ? { timestampExtractor: (r: { value: unknown }) => Number(String(r.value).split('@')[1]) } : {}),
  };
  const a = b.stream<string, string>('a', opts);
  const c = b.stream<string, string>('b', opts);
  a.merge(c)
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeWithNoGrace(size))
    .count()
    .suppress(Suppressed.untilWindowCloses())
    .toStream()
    .to('out', { keySerde: S, valueSerde: L });
  const d = new TopologyTestDriver(b.build(), eventTime === undefined ? {} : { eventTime });
  return {
    d,
    a: d.createInputTopic('a', S, S),
    b: d.createInputTopic('b', S, S),
    out: d.createOutputTopic('out', windowedString, L),
  };
}

test('timestamp extractor sets event time from the value', () => {
  const { d, a, out } = finalCounts(undefined, true);
  a.pipeInput('k', 'x@3', 1000);
  a.pipeInput('k', 'x@12', 1);
  assert.deepEqual(readWindowed(out), ['k[0,10)=1@3']);
  assert.equal(d.streamTime(), 12);
});

test('watermark is the minimum across inputs: a lagging input holds windows open', () => {
  const { d, a, b, out } = finalCounts({ maxOutOfOrderness: 0 });
  a.pipeInput('k', 'v', 5);
  a.pipeInput('k', 'v', 25);
  assert.deepEqual(readWindowed(out), [], 'input b has no data yet: watermark held');
  b.pipeInput('k', 'v', 8);
  assert.deepEqual(readWindowed(out), []);
  assert.equal(d.streamTime(), 8);
  b.pipeInput('k', 'v', 21);
  assert.deepEqual(readWindowed(out), ['k[0,10)=2@8']);
  assert.equal(d.streamTime(), 21);
});

test('bounded out-of-orderness delays the watermark; records behind it are late and counted', () => {
  const { d, a, b, out } = finalCounts({ maxOutOfOrderness: 5, lateRecords: 'drop' });
  b.pipeInput('z', 'v', 1000); // b far ahead: a decides the watermark
  a.pipeInput('k', 'v', 3);
  a.pipeInput('k', 'v', 14); // watermark 9: [0,10) still open
  assert.deepEqual(readWindowed(out), []);
  a.pipeInput('k', 'v', 7); // out of order but not late (7 >= 9? no: late)
  assert.equal(d.metrics.lateRecords, 1);
  a.pipeInput('k', 'v', 9); // exactly at the watermark: accepted
  a.pipeInput('k', 'v', 15); // watermark 10: [0,10) closes
  assert.deepEqual(readWindowed(out), ['k[0,10)=2@9']);
  assert.equal(d.metrics.lateRecords, 1);
});

test('late records go to a side-output topic unchanged, with a header', () => {
  const b = new StreamsBuilder();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S }).to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build(), { eventTime: { maxOutOfOrderness: 10, lateRecords: { topic: 'late' } } });
  const input = d.createInputTopic('in', S, S);
  input.pipeInput('k', 'ok', 100);
  input.pipeInput('k', 'tooOld', 89);
  input.pipeInput('k', 'fine', 90);
  assert.deepEqual(d.createOutputTopic('out', S, S).readValuesToList(), ['ok', 'fine']);
  const late = d.createOutputTopic('late', S, S).readRecord();
  assert.equal(late.value, 'tooOld');
  assert.equal(late.timestamp, 89);
  assert.equal(late.headers[0]?.[0], 'tributary.late');
  assert.equal(d.metrics.lateRecords, 1);
});

test('an idle input stops holding the watermark back after the idle timeout', () => {
  const { d, a, out } = finalCounts({ idleTimeout: 1000 });
  a.pipeInput('k', 'v', 5);
  a.pipeInput('k', 'v', 25);
  assert.deepEqual(readWindowed(out), []);
  d.advanceWallClockTime(999);
  a.pipeInput('k', 'v', 26); // a is active again; b (never seen) has been idle 999 ms
  assert.deepEqual(readWindowed(out), []);
  d.advanceWallClockTime(1);
  a.pipeInput('k', 'v', 27);
  assert.deepEqual(readWindowed(out), ['k[0,10)=1@5']);
});

test('windows close on wall-clock progress when every input is idle (no new records needed)', () => {
  const { d, a, out } = finalCounts({ idleTimeout: 1000 }, false, 10_000);
  a.pipeInput('k', 'v', 5);
  d.advanceWallClockTime(999);
  assert.equal(d.streamTime(), Number.NEGATIVE_INFINITY, 'input b never seen and not yet idle');
  d.advanceWallClockTime(1); // everything idle: event time = last timestamp + wall time since it arrived
  assert.equal(d.streamTime(), 1005);
  d.advanceWallClockTime(8994);
  assert.deepEqual(readWindowed(out), []);
  d.advanceWallClockTime(1); // event time reaches 10000: [0,10000) closes without another record
  assert.deepEqual(readWindowed(out), ['k[0,10000)=1@5']);
});

test('stream-time mode (default) takes the max across inputs, as Kafka Streams', () => {
  const { d, a, b, out } = finalCounts(undefined);
  a.pipeInput('k', 'v', 5);
  assert.deepEqual(readWindowed(out), []);
  b.pipeInput('k', 'v', 10); // stream time 10 closes [0,10) (no grace) although input a is at 5
  assert.deepEqual(readWindowed(out), ['k[0,10)=1@5']);
  a.pipeInput('k', 'v', 3);
  assert.equal(d.metrics.droppedRecords, 1);
  assert.equal(d.metrics.lateRecords, 0, 'stream-time mode has no source-level lateness');
});

test('in-process sources: pipeValue feeds objects (no serde in), late ones go out serialized; onOutput gets results', () => {
  const b = new StreamsBuilder();
  b.stream<string, { n: number }>('in', { keySerde: S, valueSerde: Serdes.JSON() as never })
    .mapValues((v) => v.n * 2)
    .to('out', { keySerde: S, valueSerde: L });
  const seen: { topic: string; value: Buffer | null }[] = [];
  const d = new TopologyTestDriver(b.build(), {
    eventTime: { maxOutOfOrderness: 10, lateRecords: { topic: 'late' } },
    onOutput: (r) => seen.push({ topic: r.topic, value: r.value }),
  });
  d.pipeValue('in', 'k', { n: 1 }, 100);
  d.pipeValue('in', 'k', { n: 2 }, 89); // behind the watermark (90): late
  d.pipeValue('in', 'k', { n: 3 }, 95);
  assert.deepEqual(
    seen.filter((r) => r.topic === 'out').map((r) => L.deserialize('out', r.value)),
    [2, 6],
  );
  const late = seen.filter((r) => r.topic === 'late');
  assert.equal(late.length, 1);
  assert.deepEqual(JSON.parse(String(late[0]?.value)), { n: 2 });
  assert.throws(() => d.pipeValue('nope', 'k', 1, 1), /source topic/);
});
