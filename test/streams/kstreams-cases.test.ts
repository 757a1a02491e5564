import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EmitStrategy,
  type EventTimeConfig,
  JoinWindows,
  Serdes,
  SessionWindows,
  SlidingWindows,
  StreamsBuilder,
  Suppressed,
  TimeWindows,
  TopologyTestDriver,
  type Windowed,
} from '../../src/streams/index.ts';
import { fmt, parseInputs, readWindowed, S, windowedString } from './helpers.ts';

const L = Serdes.Long();

test('K1 hopping window aggregate emits every update with window-max timestamps', () => {
  const b = new StreamsBuilder();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .groupByKey()
    .windowedBy(TimeWindows.of(10).advanceBy(5))
    .aggregate(
      () => '0',
      (_k, v, a) => `${a}+${v}`,
    )
    .toStream()
    .to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  const inputs =
    'A:1@0 B:2@1 C:3@2 D:4@3 A:1@4 | A:1@5 B:2@6 D:4@7 B:2@8 C:3@9 | A:1@10 B:2@11 D:4@12 B:2@13 C:3@14 | B:1@3 B:2@2 B:3@9';
  for (const [k, v, ts] of parseInputs(inputs)) input.pipeInput(k, v, ts);
  const expected = `A[0,10)=0+1@0  B[0,10)=0+2@1  C[0,10)=0+3@2  D[0,10)=0+4@3  A[0,10)=0+1+1@4
A[0,10)=0+1+1+1@5  A[5,15)=0+1@5  B[0,10)=0+2+2@6  B[5,15)=0+2@6  D[0,10)=0+4+4@7  D[5,15)=0+4@7
B[0,10)=0+2+2+2@8  B[5,15)=0+2+2@8  C[0,10)=0+3+3@9  C[5,15)=0+3@9
A[5,15)=0+1+1@10  A[10,20)=0+1@10  B[5,15)=0+2+2+2@11  B[10,20)=0+2@11  D[5,15)=0+4+4@12  D[10,20)=0+4@12
B[5,15)=0+2+2+2+2@13  B[10,20)=0+2+2@13  C[5,15)=0+3+3@14  C[10,20)=0+3@14
B[0,10)=0+2+2+2+1@8  B[0,10)=0+2+2+2+1+2@8  B[0,10)=0+2+2+2+1+2+3@9  B[5,15)=0+2+2+2+2+3@13`
    .trim()
    .split(/\s+/);
  assert.deepEqual(readWindowed(d.createOutputTopic('out', windowedString, S)), expected);
  assert.equal(d.metrics.droppedRecords, 0);
});

function graceTopology(windows: TimeWindows) {
  const b = new StreamsBuilder();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .groupByKey()
    .windowedBy(windows)
    .aggregate(
      () => '',
      (_k, v, a) => `${a}+${v}`,
    )
    .toStream()
    .to('out', { keySerde: S, valueSerde: S });
  return new TopologyTestDriver(b.build());
}

test('K2 tumbling window with grace drops records for closed windows and counts them', () => {
  const d = graceTopology(TimeWindows.ofSizeAndGrace(10, 90));
  const input = d.createInputTopic('in', S, S);
  for (const [k, v, ts] of parseInputs('k:100@200 k:0@100 k:1@101 k:2@102 k:3@103 k:4@104 k:5@105 k:6@6'))
    input.pipeInput(k, v, ts);
  assert.deepEqual(readWindowed(d.createOutputTopic('out', windowedString, S)), ['k[200,210)=+100@200']);
  assert.equal(d.metrics.droppedRecords, 7);
  assert.equal(d.metrics.maxLateness, 194);
});

test('K3 hopping window with grace accepts a record into open windows only', () => {
  const d = graceTopology(TimeWindows.ofSizeAndGrace(10, 90).advanceBy(5));
  const input = d.createInputTopic('in', S, S);
  for (const [k, v, ts] of parseInputs('k:100@100 k:0@0 k:1@1 k:2@2 k:3@3 k:4@4 k:5@5 k:6@6'))
    input.pipeInput(k, v, ts);
  assert.deepEqual(readWindowed(d.createOutputTopic('out', windowedString, S)), [
    'k[95,105)=+100@100',
    'k[100,110)=+100@100',
    'k[5,15)=+5@5',
    'k[5,15)=+5+6@6',
  ]);
  assert.equal(d.metrics.droppedRecords, 7);
});

function suppressDriver(windows: TimeWindows | SlidingWindows) {
  const b = new StreamsBuilder();
  const counts = b
    .stream<string, string>('in', { keySerde: S, valueSerde: S })
    .groupByKey()
    .windowedBy(windows)
    .count();
  counts.toStream().to('raw', { keySerde: S, valueSerde: L });
  counts.suppress(Suppressed.untilWindowCloses()).toStream().to('final', { keySerde: S, valueSerde: L });
  return new TopologyTestDriver(b.build());
}

function pipeTimes(d: TopologyTestDriver, spec: string): void {
  const input = d.createInputTopic('in', S, S);
  for (const t of spec.trim().split(/\s+/)) {
    const [k, ts] = t.split('@') as [string, string];
    input.pipeInput(k, 'v', Number(ts));
  }
}

test('K4 suppress(untilWindowCloses) on tumbling windows emits final counts once', () => {
  const d = suppressDriver(TimeWindows.ofSizeAndGrace(2, 1));
  pipeTimes(d, 'k1@0 k1@1 k1@2 k1@1 k1@0 k1@5 k1@0');
  assert.deepEqual(readWindowed(d.createOutputTopic('raw', windowedString, L)), [
    'k1[0,2)=1@0',
    'k1[0,2)=2@1',
    'k1[2,4)=1@2',
    'k1[0,2)=3@1',
    'k1[0,2)=4@1',
    'k1[4,6)=1@5',
  ]);
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L)), ['k1[0,2)=4@1', 'k1[2,4)=1@2']);
  assert.equal(d.metrics.droppedRecords, 1);
});

test('K5 suppress with a large stream-time jump', () => {
  const d = suppressDriver(TimeWindows.ofSizeAndGrace(2, 2));
  pipeTimes(d, 'k1@0 k1@1 k1@2 k1@0 k1@3 k1@0 k1@4 k1@0 k1@30');
  assert.deepEqual(readWindowed(d.createOutputTopic('raw', windowedString, L)), [
    'k1[0,2)=1@0',
    'k1[0,2)=2@1',
    'k1[2,4)=1@2',
    'k1[0,2)=3@1',
    'k1[2,4)=2@3',
    'k1[0,2)=4@1',
    'k1[4,6)=1@4',
    'k1[30,32)=1@30',
  ]);
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L)), [
    'k1[0,2)=4@1',
    'k1[2,4)=2@3',
    'k1[4,6)=1@4',
  ]);
});

test('K6 sliding windows with suppress emit the final count of every window', () => {
  const d = suppressDriver(SlidingWindows.ofTimeDifferenceAndGrace(5, 15));
  pipeTimes(d, 'k1@10 k1@11 k1@10 k1@13 k1@10 k1@24 k1@5 k1@7 k1@90');
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L), true), [
    'k1[5..10]=5@10',
    'k1[6..11]=5@11',
    'k1[8..13]=5@13',
    'k1[11..16]=2@13',
    'k1[12..17]=1@13',
    'k1[19..24]=1@24',
  ]);
  const raw = readWindowed(d.createOutputTopic('raw', windowedString, L), true);
  const history = (w: string) => raw.filter((r) => r.startsWith(`k1${w}=`)).map((r) => r.split('=')[1]?.split('@')[0]);
  assert.deepEqual(history('[5..10]'), ['1', '2', '3', '4', '5']);
  assert.deepEqual(history('[6..11]'), ['2', '3', '4', '5']);
  assert.deepEqual(history('[8..13]'), ['4', '5']);
  assert.deepEqual(history('[11..16]'), ['1', '2']);
  assert.equal(raw.at(-1), 'k1[85..90]=1@90');
});

/** Counts with emitStrategy(onWindowClose) instead of suppress: `final` gets nothing but final results. */
function emitFinalDriver(
  windows: TimeWindows | SessionWindows,
  opts: { retention?: number; eventTime?: EventTimeConfig } = {},
) {
  const b = new StreamsBuilder();
  const grouped = b.stream<string, string>('in', { keySerde: S, valueSerde: S }).groupByKey();
  const materialized = { storeName: 'counts', ...(opts.retention === undefined ? {} : { retention: opts.retention }) };
  const counts =
    windows instanceof SessionWindows
      ? grouped.windowedBy(windows).emitStrategy(EmitStrategy.onWindowClose()).count(materialized)
      : grouped.windowedBy(windows).emitStrategy(EmitStrategy.onWindowClose()).count(materialized);
  counts.toStream().to('final', { keySerde: S, valueSerde: L });
  return new TopologyTestDriver(b.build(), opts.eventTime === undefined ? {} : { eventTime: opts.eventTime });
}

test('K4/K5 with emitStrategy(onWindowClose): the same final counts and timestamps as suppress, each window once', () => {
  for (const [windows, input] of [
    [TimeWindows.ofSizeAndGrace(2, 1), 'k1@0 k1@1 k1@2 k1@1 k1@0 k1@5 k1@0'],
    [TimeWindows.ofSizeAndGrace(2, 2), 'k1@0 k1@1 k1@2 k1@0 k1@3 k1@0 k1@4 k1@0 k1@30'],
    [TimeWindows.ofSizeWithNoGrace(4).advanceBy(2), 'a@0 b@1 a@3 b@4 a@5 a@9 b@2 a@20'],
  ] as const) {
    const final = emitFinalDriver(windows);
    const suppressed = suppressDriver(windows);
    pipeTimes(final, input);
    pipeTimes(suppressed, input);
    const got = readWindowed(final.createOutputTopic('final', windowedString, L));
    assert.deepEqual(got.toSorted(), readWindowed(suppressed.createOutputTopic('final', windowedString, L)).toSorted());
    assert.ok(got.length >= 2, input);
    assert.equal(final.metrics.droppedRecords, suppressed.metrics.droppedRecords, input);
    // Closed windows stay queryable until retention, as Kafka Streams keeps them.
    assert.ok(final.getWindowStore<string, number>('counts').all().length >= got.length - 1);
  }
  const d = emitFinalDriver(TimeWindows.ofSizeWithNoGrace(4).advanceBy(2));
  pipeTimes(d, 'a@0 a@1 b@3');
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L)), [], 'no window has closed');
  pipeTimes(d, 'a@6');
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L)), [
    'a[0,4)=2@1',
    'b[0,4)=1@3',
    'b[2,6)=1@3',
  ]);
  d.advanceWallClockTime(1);
  pipeTimes(d, 'a@7');
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L)), [], 'nothing twice');
});

test('emitStrategy(onWindowClose) in watermark mode: a window the store drops before the watermark passes it is still emitted', () => {
  const d = emitFinalDriver(TimeWindows.ofSizeWithNoGrace(10), {
    retention: 10,
    eventTime: { maxOutOfOrderness: 15, idleTimeout: 60_000 },
  });
  pipeTimes(d, 'k@5 k@7');
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L)), []);
  // Writing [20, 30) drops [0, 10) from the store (retention 10) while the watermark is still at 5.
  pipeTimes(d, 'k@20');
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L)), ['k[0,10)=2@7']);
  d.advanceWallClockTime(86_400_000);
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L)), ['k[20,30)=1@20']);
});

test('emitStrategy: onWindowClose needs time windows; a bad strategy is named', () => {
  const grouped = new StreamsBuilder().stream<string, string>('in', { keySerde: S, valueSerde: S }).groupByKey();
  assert.throws(
    () => grouped.windowedBy(SlidingWindows.ofTimeDifferenceWithNoGrace(5)).emitStrategy(EmitStrategy.onWindowClose()),
    /emitStrategy: expected EmitStrategy.onWindowUpdate\(\) for sliding windows/,
  );
  assert.throws(
    () => grouped.windowedBy(TimeWindows.ofSizeWithNoGrace(5)).emitStrategy({ type: 'later' } as never),
    /emitStrategy: expected EmitStrategy.onWindowUpdate\(\) or EmitStrategy.onWindowClose\(\)/,
  );
});

const GAP = 300_000;

function sessionDriver(windows: SessionWindows, suppress = false) {
  const b = new StreamsBuilder();
  const counts = b
    .stream<string, string>('in', { keySerde: S, valueSerde: S })
    .groupByKey()
    .windowedBy(windows)
    .count({ storeName: 'sessions' });
  counts.toStream().to('raw', { keySerde: S, valueSerde: L });
  if (suppress) counts.suppress(Suppressed.untilWindowCloses()).toStream().to('final', { keySerde: S, valueSerde: L });
  return new TopologyTestDriver(b.build());
}

test('sessions with emitStrategy(onWindowClose): the same final sessions as suppress, merged ones never emitted', () => {
  for (const [windows, input] of [
    [SessionWindows.ofInactivityGapWithNoGrace(10), 'a@0 b@3 a@5 a@30 b@12 a@20 c@50 a@1 b@80'],
    [SessionWindows.ofInactivityGapAndGrace(10, 10), 'a@0 a@25 a@12 b@40 a@31 b@45 a@90 b@20 c@200'],
    [SessionWindows.ofInactivityGapAndGrace(5, 2), 'x@10 y@11 x@14 x@30 y@12 x@21 x@17 y@40 x@100'],
  ] as const) {
    const final = emitFinalDriver(windows);
    const suppressed = sessionDriver(windows, true);
    pipeTimes(final, input);
    pipeTimes(suppressed, input);
    const got = readWindowed(final.createOutputTopic('final', windowedString, L), true);
    assert.deepEqual(
      got.toSorted(),
      readWindowed(suppressed.createOutputTopic('final', windowedString, L), true).toSorted(),
    );
    assert.ok(got.length >= 3, input);
    assert.equal(final.metrics.droppedRecords, suppressed.metrics.droppedRecords, input);
  }
  const d = emitFinalDriver(SessionWindows.ofInactivityGapWithNoGrace(10));
  pipeTimes(d, 'a@0 a@5');
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L), true), [], 'still open');
  pipeTimes(d, 'b@16');
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L), true), ['a[0..5]=2@5']);
  pipeTimes(d, 'b@17 b@40');
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L), true), ['b[16..17]=2@17']);
});

test('K7a session merge forwards a tombstone for the replaced session', () => {
  const d = sessionDriver(SessionWindows.ofInactivityGapWithNoGrace(GAP));
  pipeTimes(d, 'a@0 a@5');
  assert.deepEqual(readWindowed(d.createOutputTopic('raw', windowedString, L), true), [
    'a[0..0]=1@0',
    'a[0..0]=null@0',
    'a[0..5]=2@5',
  ]);
});

test('K7b a record between two sessions merges them into one', () => {
  const d = sessionDriver(SessionWindows.ofInactivityGapWithNoGrace(GAP));
  pipeTimes(d, `mel@0 mel@${GAP + 1}`);
  assert.equal(d.getSessionStore<string, number>('sessions').fetch('mel').length, 2);
  pipeTimes(d, `mel@${GAP / 2}`);
  const sessions = d.getSessionStore<string, number>('sessions').fetch('mel');
  assert.deepEqual(
    sessions.map((s) => [s.start, s.end, s.value]),
    [[0, GAP + 1, 3]],
  );
  const raw = readWindowed(d.createOutputTopic('raw', windowedString, L), true);
  assert.equal(raw.at(-1), `mel[0..${GAP + 1}]=3@${GAP + 1}`);
});

test('K7c sessions per key; a record gap+1 after the last one starts a new session', () => {
  const d = sessionDriver(SessionWindows.ofInactivityGapWithNoGrace(GAP));
  pipeTimes(d, `a@0 b@0 c@0 d@0 d@${GAP / 2} a@${GAP + 1} b@${GAP + 1} a@${GAP + 1 + GAP / 2} c@${GAP + 1 + GAP / 2}`);
  const store = d.getSessionStore<string, number>('sessions');
  const all = store
    .all()
    .map((s) => `${s.key}[${s.start}..${s.end}]=${s.value}`)
    .sort();
  assert.deepEqual(
    all,
    [
      `a[${GAP + 1}..${GAP + 1 + GAP / 2}]=2`,
      'a[0..0]=1',
      `b[${GAP + 1}..${GAP + 1}]=1`,
      'b[0..0]=1',
      `c[${GAP + 1 + GAP / 2}..${GAP + 1 + GAP / 2}]=1`,
      'c[0..0]=1',
      `d[0..${GAP / 2}]=2`,
    ].sort(),
  );
});

test('K7d late session records are dropped by grace', () => {
  for (const [grace, times, dropped] of [
    [0, 'x@1 k@0', 1],
    [1, 'x@1 k@0', 0],
    [1, 'x@2 k@0', 1],
  ] as const) {
    const d = sessionDriver(SessionWindows.ofInactivityGapAndGrace(10, grace));
    pipeTimes(d, times);
    assert.equal(d.metrics.droppedRecords, dropped, `grace ${grace}, ${times}`);
    assert.equal(d.getSessionStore<string, number>('sessions').fetch('k').length, 1 - dropped);
  }
});

test('K8 session windows with suppress', () => {
  const d = sessionDriver(SessionWindows.ofInactivityGapWithNoGrace(5), true);
  pipeTimes(d, 'k1@0 k1@5 k1@1 k2@6 k1@5 k1@30');
  assert.deepEqual(readWindowed(d.createOutputTopic('raw', windowedString, L), true), [
    'k1[0..0]=1@0',
    'k1[0..0]=null@0',
    'k1[0..5]=2@5',
    'k1[0..5]=null@5',
    'k1[0..5]=3@5',
    'k2[6..6]=1@6',
    'k1[30..30]=1@30',
  ]);
  assert.deepEqual(readWindowed(d.createOutputTopic('final', windowedString, L), true), [
    'k1[0..5]=3@5',
    'k2[6..6]=1@6',
  ]);
  assert.equal(d.metrics.droppedRecords, 1);
});

test('K9 KStream-KTable join: only stream records trigger output', () => {
  const b = new StreamsBuilder();
  const table = b.table<string, string>('table', { keySerde: S, valueSerde: S });
  b.stream<string, string>('stream', { keySerde: S, valueSerde: S })
    .join(table, (l, r) => `${l}+${r}`)
    .to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const s = d.createInputTopic('stream', S, S);
  const t = d.createInputTopic('table', S, S);
  const out = d.createOutputTopic('out', S, S);
  const streamAll = (n: number) => {
    for (let i = 0; i < n; i++) s.pipeInput(String(i), `X${i}`, i);
  };
  streamAll(2);
  assert.deepEqual(out.readRecordsToList(), []);
  t.pipeInput('0', 'Y0', 0);
  t.pipeInput('1', 'Y1', 1);
  assert.deepEqual(out.readRecordsToList(), []);
  streamAll(4);
  assert.deepEqual(out.readRecordsToList().map(fmt), ['0:X0+Y0@0', '1:X1+Y1@1']);
  for (let i = 0; i < 4; i++) t.pipeInput(String(i), `YY${i}`, i);
  assert.deepEqual(out.readRecordsToList(), []);
  streamAll(4);
  assert.deepEqual(out.readRecordsToList().map(fmt), ['0:X0+YY0@0', '1:X1+YY1@1', '2:X2+YY2@2', '3:X3+YY3@3']);
});

test('K10 KStream-KStream outer join with 100 ms windows and no grace', () => {
  const b = new StreamsBuilder();
  const left = b.stream<string, string>('left', { keySerde: S, valueSerde: S });
  const right = b.stream<string, string>('right', { keySerde: S, valueSerde: S });
  left
    .outerJoin(right, (l, r) => `${l}+${r}`, JoinWindows.ofTimeDifferenceWithNoGrace(100))
    .to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const l = d.createInputTopic('left', S, S);
  const r = d.createInputTopic('right', S, S);
  const out = d.createOutputTopic('out', S, S);
  const read = () => out.readRecordsToList().map(fmt);
  const pipe = (topic: typeof l, prefix: string, keys: number[], ts: (i: number) => number) => {
    for (const i of keys) topic.pipeInput(String(i), `${prefix}${i}`, ts(i));
  };
  pipe(l, 'A', [0, 1], () => 0);
  assert.deepEqual(read(), []);
  pipe(r, 'a', [0, 1, 2, 3], () => 0);
  assert.deepEqual(read(), ['0:A0+a0@0', '1:A1+a1@0']);
  pipe(r, 'b', [0, 1, 2, 3], (i) => 1000 + i);
  assert.deepEqual(read(), ['2:null+a2@0', '3:null+a3@0']);
  pipe(l, 'B', [0, 1, 2, 3], () => 1100);
  assert.deepEqual(read(), ['0:B0+b0@1100', '1:B1+b1@1100', '2:B2+b2@1100', '3:B3+b3@1100']);
  pipe(l, 'C', [0, 1, 2, 3], () => 1101);
  assert.deepEqual(read(), ['1:C1+b1@1101', '2:C2+b2@1101', '3:C3+b3@1101']);
  pipe(l, 'D', [0, 1, 2, 3], () => 1102);
  assert.deepEqual(read(), ['2:D2+b2@1102', '3:D3+b3@1102']);
  pipe(l, 'E', [0, 1, 2, 3], () => 1103);
  assert.deepEqual(read(), ['3:E3+b3@1103']);
  pipe(l, 'F', [0, 1, 2, 3], () => 1104);
  assert.deepEqual(read(), []);
  l.pipeInput('0', 'dummy', 1405);
  assert.deepEqual(read(), [
    '0:C0+null@1101',
    '0:D0+null@1102',
    '1:D1+null@1102',
    '0:E0+null@1103',
    '1:E1+null@1103',
    '2:E2+null@1103',
    '0:F0+null@1104',
    '1:F1+null@1104',
    '2:F2+null@1104',
    '3:F3+null@1104',
  ]);
  pipe(l, 'G', [0, 1, 2, 3], () => 899);
  assert.deepEqual(read(), ['0:G0+null@899', '1:G1+null@899', '2:G2+null@899', '3:G3+null@899']);
});

export type { Windowed };

function joinDriver(kind: 'join' | 'leftJoin', windows: JoinWindows) {
  const b = new StreamsBuilder();
  const left = b.stream<string, string>('left', { keySerde: S, valueSerde: S });
  const right = b.stream<string, string>('right', { keySerde: S, valueSerde: S });
  const joiner = (l: string, r: string | null) => `${l}+${r}`;
  const joined = kind === 'join' ? left.join(right, joiner, windows) : left.leftJoin(right, joiner, windows);
  joined.to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const l = d.createInputTopic('left', S, S);
  const r = d.createInputTopic('right', S, S);
  const out = d.createOutputTopic('out', S, S);
  const pipe = (topic: typeof l, prefix: string, keys: number[], ts: number) => {
    for (const i of keys) topic.pipeInput(String(i), `${prefix}${i}`, ts);
  };
  return { l, r, pipe, read: () => out.readRecordsToList().map(fmt) };
}

test('K10 variant: inner KStream-KStream join emits only matches', () => {
  const { l, r, pipe, read } = joinDriver('join', JoinWindows.ofTimeDifferenceWithNoGrace(100));
  pipe(l, 'A', [0, 1], 0);
  pipe(r, 'a', [0, 1, 2, 3], 0);
  assert.deepEqual(read(), ['0:A0+a0@0', '1:A1+a1@0']);
  pipe(r, 'b', [0], 1000);
  pipe(l, 'C', [0, 1], 1101);
  assert.deepEqual(read(), []);
  l.pipeInput('0', 'dummy', 1405);
  assert.deepEqual(read(), [], 'inner joins never emit unmatched records');
});

test('K10 variant: left KStream-KStream join emits unmatched left records when their window closes, never right ones', () => {
  const { l, r, pipe, read } = joinDriver('leftJoin', JoinWindows.ofTimeDifferenceWithNoGrace(100));
  pipe(l, 'A', [0, 1], 0);
  pipe(r, 'a', [0, 1, 2, 3], 0);
  assert.deepEqual(read(), ['0:A0+a0@0', '1:A1+a1@0']);
  pipe(r, 'b', [0, 2, 3], 1000);
  r.pipeInput('1', 'b1', 1001);
  assert.deepEqual(read(), [], 'right-only a2, a3 are not emitted by a left join');
  pipe(l, 'C', [0, 1], 1101);
  assert.deepEqual(read(), ['1:C1+b1@1101']);
  l.pipeInput('3', 'dummy', 1405);
  assert.deepEqual(read(), ['0:C0+null@1101']);
  pipe(l, 'G', [0], 899);
  assert.deepEqual(read(), ['0:G0+null@899']);
});

test('JoinWindows before/after are asymmetric: left at t joins right in [t - before, t + after]', () => {
  const { l, r, pipe, read } = joinDriver('join', JoinWindows.ofTimeDifferenceWithNoGrace(0).after(100));
  pipe(l, 'L', [0], 500);
  pipe(r, 'x', [0], 450); // before the left record: outside [500, 600]
  pipe(r, 'y', [0], 600);
  pipe(r, 'z', [0], 601);
  assert.deepEqual(read(), ['0:L0+y0@600']);
});

test('outer join held records survive a restart from the changelog without sequence collisions', () => {
  const build = () => {
    const b = new StreamsBuilder();
    const left = b.stream<string, string>('left', { keySerde: S, valueSerde: S });
    const right = b.stream<string, string>('right', { keySerde: S, valueSerde: S });
    left
      .outerJoin(right, (l, r) => `${l}+${r}`, JoinWindows.ofTimeDifferenceWithNoGrace(100), { name: 'j' })
      .to('out', { keySerde: S, valueSerde: S });
    return b.build();
  };
  const d1 = new TopologyTestDriver(build(), { applicationId: 'app' });
  d1.createInputTopic('left', S, S).pipeInput('a', 'L1', 10);
  const d2 = new TopologyTestDriver(build(), { applicationId: 'app' });
  for (const store of ['j-this-store', 'j-other-store', 'j-outer-shared-store'])
    for (const r of d1.createOutputTopic(`app-${store}-changelog`, Serdes.Bytes(), Serdes.Bytes()).readRecordsToList())
      d2.task.restore(store, r.key, r.value);
  // A new unmatched record with the same timestamp must not replace the restored one.
  d2.createInputTopic('left', S, S).pipeInput('b', 'L2', 10);
  d2.createInputTopic('right', S, S).pipeInput('z', 'R', 500);
  assert.deepEqual(d2.createOutputTopic('out', S, S).readRecordsToList().map(fmt).sort(), [
    'a:L1+null@10',
    'b:L2+null@10',
  ]);
});

test('K9 with a versioned table and join grace: stream records wait for stream time ts + grace, then join the version valid at ts', () => {
  const b = new StreamsBuilder();
  const table = b.table<string, string>('table', { keySerde: S, valueSerde: S, versioned: { historyRetention: 100 } });
  b.stream<string, string>('stream', { keySerde: S, valueSerde: S })
    .join(table, (l, r) => `${l}+${r}`, { gracePeriod: 2 })
    .to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const s = d.createInputTopic('stream', S, S);
  const t = d.createInputTopic('table', S, S);
  const out = d.createOutputTopic('out', S, S);
  t.pipeInput('0', 'Y0', 0);
  s.pipeInput('0', 'X0', 3);
  assert.deepEqual(out.readRecordsToList().map(fmt), [], 'held until stream time reaches 3 + 2');
  t.pipeInput('0', 'YY0', 4); // a newer version, but X0@3 must see Y0
  assert.deepEqual(out.readRecordsToList().map(fmt), []);
  t.pipeInput('1', 'Y1', 5); // stream time 5: X0 is due
  assert.deepEqual(out.readRecordsToList().map(fmt), ['0:X0+Y0@3']);
  t.pipeInput('0', 'OLD', 1); // an out-of-order update is history only
  s.pipeInput('0', 'X1', 2); // already past grace (2 + 2 <= 5): joins at once, against the version at 2
  s.pipeInput('0', 'X2', 6);
  t.pipeInput('x', 'y', 8);
  assert.deepEqual(out.readRecordsToList().map(fmt), ['0:X1+OLD@2', '0:X2+YY0@6']);
  assert.equal(d.getKeyValueStore<string, string>(table.storeName).get('0'), 'YY0');
  assert.throws(() => {
    const b2 = new StreamsBuilder();
    const plain = b2.table<string, string>('t');
    b2.stream<string, string>('s').join(plain, (l, r) => `${l}${r}`, { gracePeriod: 1 });
  }, /versioned/);
});

test('K7c with the record cache on, flushed at the end: one final change per session, in cache order', () => {
  const b = new StreamsBuilder();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .groupByKey()
    .windowedBy(SessionWindows.ofInactivityGapWithNoGrace(GAP))
    .count({ cache: true })
    .toStream()
    .to('raw', { keySerde: S, valueSerde: L });
  const d = new TopologyTestDriver(b.build());
  pipeTimes(d, `a@0 b@0 c@0 d@0 d@${GAP / 2} a@${GAP + 1} b@${GAP + 1} a@${GAP + 1 + GAP / 2} c@${GAP + 1 + GAP / 2}`);
  assert.deepEqual(readWindowed(d.createOutputTopic('raw', windowedString, L), true), [
    'a[0..0]=1@0',
    'b[0..0]=1@0',
    'c[0..0]=1@0',
    `d[0..${GAP / 2}]=2@${GAP / 2}`,
    `b[${GAP + 1}..${GAP + 1}]=1@${GAP + 1}`,
    `a[${GAP + 1}..${GAP + 1 + GAP / 2}]=2@${GAP + 1 + GAP / 2}`,
    `c[${GAP + 1 + GAP / 2}..${GAP + 1 + GAP / 2}]=1@${GAP + 1 + GAP / 2}`,
  ]);
});
