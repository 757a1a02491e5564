/**
 * An embedded consumer and a kcat (librdkafka) consumer share one consumer group: the embedded client
 * speaks Kafka's consumer protocol (subscription/assignment encoding, the "range" assignor), so groups can
 * mix in-process members with members connected to the broker.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { embeddedClient } from '../../src/log/index.ts';
import { KCAT, kcatSkip, startTestBroker, type TestBroker, waitFor } from '../interop/helpers.ts';

let t: TestBroker;

before(async () => {
  t = await startTestBroker();
});
after(async () => {
  await t?.close();
});

function kcatMember(bootstrap: string, group: string, topic: string): { child: ChildProcess; lines: string[] } {
  const child = spawn(
    KCAT,
    [
      '-b',
      bootstrap,
      '-G',
      group,
      '-u', // unbuffered: lines arrive as consumed
      '-q',
      '-f',
      '%p %s\n',
      '-X',
      'auto.offset.reset=earliest',
      '-X',
      'heartbeat.interval.ms=100',
      '-X',
      'session.timeout.ms=6000',
      '-X',
      'partition.assignment.strategy=range',
      '-X',
      'auto.commit.interval.ms=100',
      topic,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const m = { child, lines: [] as string[] };
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    m.lines.push(...parts);
  });
  return m;
}

test('an embedded consumer and a kcat consumer split a group and hand over on leave', { skip: kcatSkip }, async () => {
  const topic = 'mixed';
  const group = 'mixed-g';
  await t.log.createTopic(topic, { partitions: 4 });
  const kcat = kcatMember(t.bootstrap, group, topic);
  const exited = new Promise((resolve) => kcat.child.on('close', resolve));
  const client = embeddedClient(t.log);
  try {
    const stableWith = (n: number) => () => {
      const d = t.log.describeGroup(group);
      return d.state === 'Stable' && d.members.length === n && d.members.every((m) => m.assignment.length > 0);
    };
    await waitFor('kcat alone in the group', stableWith(1), 40_000);
    const consumer = client.consumer({
      groupId: group,
      autoOffsetReset: 'earliest',
      heartbeatIntervalMs: 50,
      sessionTimeoutMs: 6_000,
    });
    await consumer.subscribe([topic]);
    await waitFor('a stable group of two', stableWith(2), 40_000);
    const mine = consumer.assignment().map((tp) => tp.partition);
    assert.equal(mine.length, 2, 'range over four partitions gives each member two');

    const producer = client.producer();
    const first = Array.from({ length: 400 }, (_, i) => ({ topic, partition: i % 4, value: `first-${i}` }));
    await producer.send(first);
    const embedded: { partition: number; value: string }[] = [];
    const deadline = Date.now() + 40_000;
    while (embedded.length + kcat.lines.length < 400) {
      assert.ok(Date.now() < deadline, `timed out: ${embedded.length} + ${kcat.lines.length} of 400`);
      for (const r of await consumer.poll(100)) embedded.push({ partition: r.partition, value: r.value!.toString() });
    }
    const theirs = kcat.lines.map((l) => ({ partition: Number(l.split(' ')[0]), value: l.split(' ')[1]! }));
    const all = [...embedded, ...theirs].map((r) => r.value);
    assert.equal(all.length, 400, 'no message consumed twice');
    assert.equal(new Set(all).size, 400, 'every message consumed');
    assert.ok(
      embedded.every((r) => mine.includes(r.partition)),
      'the embedded member reads only its partitions',
    );
    assert.ok(
      theirs.every((r) => !mine.includes(r.partition)),
      'kcat reads only the other two',
    );
    await consumer.commit();
    // "Committed" must mean committed on both sides before the hand-over: kcat auto-commits (every 100 ms).
    await waitFor(
      'kcat commits what it consumed',
      async () => {
        const committed = await t.log.fetchOffsets(
          group,
          [0, 1, 2, 3].map((partition) => ({ topic, partition })),
        );
        return committed.reduce((sum, o) => sum + Number(o.offset < 0n ? 0n : o.offset), 0) === 400;
      },
      40_000,
    );

    // The embedded member leaves; kcat takes all four partitions and continues after the committed offsets.
    await consumer.close();
    await waitFor('kcat alone again', stableWith(1), 40_000);
    const before = kcat.lines.length;
    await producer.send(first.map((r) => ({ ...r, value: r.value.replace('first', 'second') })));
    await waitFor('kcat consumes the second round', () => kcat.lines.length - before >= 400, 40_000);
    await new Promise((r) => setTimeout(r, 200));
    const second = kcat.lines.slice(before).map((l) => l.split(' ')[1]!);
    assert.equal(second.filter((v) => v.startsWith('first')).length, 0, 'committed records are not redelivered');
    assert.equal(new Set(second).size, 400);
    assert.equal(new Set(kcat.lines.slice(before).map((l) => l.split(' ')[0])).size, 4);
  } finally {
    await client.close();
    kcat.child.kill('SIGTERM');
    await exited;
  }
});
