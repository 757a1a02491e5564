import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  backoffDelay,
  nextCronTime,
  type PipelineInput,
  PipelineRunner,
  partitionForFire,
  partitionRange,
  type RecordBatch,
  Scheduler,
} from '../../src/pipeline/index.ts';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-exec-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function runner(name: string, extra: Partial<ConstructorParameters<typeof PipelineRunner>[0]> = {}): PipelineRunner {
  return new PipelineRunner({ dataDir: path.join(dir, name), ...extra });
}

/** A fn rule that fails its first `failures` calls. */
function flaky(failures: number, calls: { n: number }): (rows: RecordBatch) => RecordBatch {
  return function flakyFn(rows) {
    calls.n++;
    if (calls.n <= failures) throw new Error(`transient failure ${calls.n}`);
    return rows;
  };
}

function status(r: { stages: { stageId: string; status: string }[] }): Record<string, string> {
  return Object.fromEntries(r.stages.map((s) => [s.stageId, s.status]));
}

describe('retries', () => {
  test('a stage retries with exponential backoff and jitter, and the attempts are recorded', async () => {
    const sleeps: number[] = [];
    const r = runner('retry', { sleep: async (ms) => void sleeps.push(ms), random: () => 1 });
    const calls = { n: 0 };
    try {
      const res = await r.run({
        name: 'retry',
        stages: [
          { id: 'src', type: 'ingest', source: { kind: 'sql', sql: 'SELECT range AS x FROM range(10)' } },
          {
            id: 't',
            type: 'transform',
            inputs: ['src'],
            rules: [{ fn: flaky(2, calls) }],
            retry: { maxAttempts: 4, initialDelayMs: 100, multiplier: 3, jitter: 0.5, maxDelayMs: 250 },
          },
        ],
      });
      assert.equal(res.run.status, 'succeeded');
      assert.equal(calls.n, 3);
      assert.equal(res.stages.find((s) => s.stageId === 't')!.attempts, 3);
      // random() = 1 adds the whole jitter: 100 * 1.5, then min(250, 300) * 1.5
      assert.deepEqual(sleeps, [150, 375]);
    } finally {
      await r.close();
    }
  });

  test('backoff grows by the multiplier up to the cap, jitter stays within its fraction', () => {
    const p = { maxAttempts: 9, initialDelayMs: 10, maxDelayMs: 100, multiplier: 2, jitter: 0.2 };
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((a) => backoffDelay(p, a, () => 0.5)),
      [10, 20, 40, 80, 100],
    );
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(p, 2, Math.random);
      assert.ok(d >= 16 && d <= 24, String(d));
    }
  });

  test('the retry policy is stored on the run: resuming uses it, not the changed spec', async () => {
    const sleeps: number[] = [];
    const r = runner('stored-policy', { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 });
    const calls = { n: 0 };
    const fn = flaky(5, calls);
    const spec = (maxAttempts: number): PipelineInput => ({
      name: 'stored',
      stages: [
        { id: 'src', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS x' } },
        { id: 't', type: 'transform', inputs: ['src'], rules: [{ fn }], retry: { maxAttempts, initialDelayMs: 7 } },
      ],
    });
    try {
      const first = await r.run(spec(2));
      assert.equal(first.run.status, 'failed');
      assert.equal(first.run.policy.t!.retry.maxAttempts, 2);
      assert.equal(calls.n, 2);
      const resumed = await r.resume(first.run.id, { spec: spec(10) });
      assert.equal(resumed.run.id, first.run.id);
      assert.equal(resumed.run.status, 'failed');
      assert.equal(calls.n, 4, 'two more attempts under the stored policy');
      assert.deepEqual(sleeps, [7, 7]);
    } finally {
      await r.close();
    }
  });

  test('a stage timing out fails with TIMEOUT and is retried', async () => {
    const r = runner('timeout', { sleep: async () => {} });
    let calls = 0;
    try {
      const res = await r.run({
        name: 'timeout',
        stages: [
          { id: 'src', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS x' } },
          {
            id: 'slow',
            type: 'transform',
            inputs: ['src'],
            timeoutMs: 50,
            retry: { maxAttempts: 2 },
            rules: [
              {
                fn: async function slow(rows: RecordBatch) {
                  calls++;
                  await new Promise((res) => setTimeout(res, 400));
                  return rows;
                },
              },
            ],
          },
        ],
      });
      assert.equal(res.run.status, 'failed');
      const s = res.stages.find((x) => x.stageId === 'slow')!;
      assert.match(s.error!, /timed out after 50 ms/);
      assert.equal(s.attempts, 2);
      assert.equal(calls, 2);
    } finally {
      await r.close();
    }
  });
});

describe('failure policies and parallelism', () => {
  const failing = (onFailure: 'fail' | 'continue' | 'skip-downstream'): PipelineInput => ({
    name: `policy-${onFailure}`,
    concurrency: 1,
    stages: [
      { id: 'a', type: 'ingest', source: { kind: 'sql', sql: 'SELECT range AS x FROM range(5)' } },
      {
        id: 'bad',
        type: 'transform',
        inputs: ['a'],
        onFailure,
        rules: [{ sql: 'SELECT no_such_column FROM {{input}}' }],
      },
      { id: 'after_bad', type: 'transform', inputs: ['bad'], rules: [{ filter: 'x > 1' }] },
      { id: 'other', type: 'transform', inputs: ['a'], rules: [{ filter: 'x > 2' }] },
      { id: 'other2', type: 'transform', inputs: ['other'], rules: [{ filter: 'x > 3' }] },
    ],
  });

  test('fail: the run fails and stages not yet started are cancelled', async () => {
    const r = runner('fail');
    try {
      const res = await r.run(failing('fail'));
      assert.equal(res.run.status, 'failed');
      assert.match(res.run.error!, /no_such_column/);
      const s = status(res);
      assert.equal(s.bad, 'failed');
      assert.equal(s.after_bad, 'cancelled');
      assert.equal(s.other2, 'cancelled');
    } finally {
      await r.close();
    }
  });

  test('skip-downstream: dependents are skipped, independent branches finish, the run fails', async () => {
    const r = runner('skip');
    try {
      const res = await r.run(failing('skip-downstream'));
      assert.deepEqual(status(res), {
        a: 'succeeded',
        bad: 'failed',
        after_bad: 'skipped',
        other: 'succeeded',
        other2: 'succeeded',
      });
      assert.equal(res.run.status, 'failed');
    } finally {
      await r.close();
    }
  });

  test('continue: a failed quality gate lets downstream run and the run succeeds', async () => {
    const r = runner('continue');
    try {
      const res = await r.run({
        name: 'continue',
        stages: [
          { id: 'a', type: 'ingest', source: { kind: 'sql', sql: 'SELECT range AS x FROM range(5)' } },
          {
            id: 'gate',
            type: 'quality',
            inputs: ['a'],
            onFailure: 'continue',
            checks: [{ type: 'range', column: 'x', max: 2 }],
          },
          { id: 'next', type: 'transform', inputs: ['gate'], rules: [{ map: { y: 'x * 2' } }] },
          {
            id: 'out',
            type: 'output',
            inputs: ['next'],
            target: { kind: 'file', path: path.join(dir, 'continue.csv') },
          },
        ],
      });
      assert.deepEqual(status(res), { a: 'succeeded', gate: 'failed', next: 'succeeded', out: 'succeeded' });
      assert.equal(res.run.status, 'succeeded');
      assert.equal(fs.readFileSync(path.join(dir, 'continue.csv'), 'utf8').trim().split('\n').length, 6);
    } finally {
      await r.close();
    }
  });

  test('an error check blocks downstream under the default policy; a warn check does not', async () => {
    const r = runner('block');
    try {
      const spec = (severity: 'warn' | 'error'): PipelineInput => ({
        name: `block-${severity}`,
        stages: [
          { id: 'a', type: 'ingest', source: { kind: 'sql', sql: 'SELECT range AS x FROM range(5)' } },
          { id: 'gate', type: 'quality', inputs: ['a'], checks: [{ type: 'range', column: 'x', max: 2, severity }] },
          { id: 'next', type: 'transform', inputs: ['gate'], rules: [{ filter: 'x > 0' }] },
        ],
      });
      const blocked = await r.run(spec('error'));
      assert.deepEqual(status(blocked), { a: 'succeeded', gate: 'failed', next: 'cancelled' });
      assert.match(blocked.stages.find((s) => s.stageId === 'gate')!.error!, /range\(x\) \(2 unexpected/);
      const warned = await r.run(spec('warn'));
      assert.deepEqual(status(warned), { a: 'succeeded', gate: 'succeeded', next: 'succeeded' });
      assert.ok(warned.quality.score! < 1);
    } finally {
      await r.close();
    }
  });

  test('independent stages run in parallel, dependent ones after their inputs', async () => {
    const r = runner('parallel');
    let active = 0;
    let peak = 0;
    const order: string[] = [];
    const slow = (label: string) =>
      async function slowFn(rows: RecordBatch): Promise<RecordBatch> {
        active++;
        peak = Math.max(peak, active);
        order.push(`start ${label}`);
        await new Promise((res) => setTimeout(res, 60));
        order.push(`end ${label}`);
        active--;
        return rows;
      };
    try {
      const res = await r.run({
        name: 'parallel',
        concurrency: 3,
        stages: [
          { id: 'a', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS x' } },
          { id: 'b1', type: 'transform', inputs: ['a'], rules: [{ fn: slow('b1') }] },
          { id: 'b2', type: 'transform', inputs: ['a'], rules: [{ fn: slow('b2') }] },
          { id: 'b3', type: 'transform', inputs: ['a'], rules: [{ fn: slow('b3') }] },
          { id: 'c', type: 'transform', inputs: ['b1'], rules: [{ union: ['b2', 'b3'] }, { fn: slow('c') }] },
        ],
      });
      assert.equal(res.run.status, 'succeeded');
      assert.equal(peak, 3);
      assert.ok(order.indexOf('start c') > order.indexOf('end b3'));
      assert.ok(order.indexOf('start c') > order.indexOf('end b1'));
    } finally {
      await r.close();
    }
  });
});

describe('resume, idempotence and backfill', () => {
  test('re-running a failed run resumes from its failed stages; succeeded outputs are not written again', async () => {
    const r = runner('resume');
    const out = path.join(dir, 'resume-out');
    fs.mkdirSync(out);
    let broken = true;
    const mayFail = function mayFail(rows: RecordBatch): RecordBatch {
      if (broken) throw new Error('downstream system unavailable');
      return rows;
    };
    const spec: PipelineInput = {
      name: 'resume',
      stages: [
        { id: 'src', type: 'ingest', source: { kind: 'sql', sql: 'SELECT range AS x FROM range(4)' } },
        { id: 'ok_out', type: 'output', inputs: ['src'], target: { kind: 'file', path: path.join(out, 'a.csv') } },
        { id: 'fragile', type: 'transform', inputs: ['src'], rules: [{ fn: mayFail }] },
        {
          id: 'late_out',
          type: 'output',
          inputs: ['fragile'],
          target: { kind: 'file', path: path.join(out, 'b.csv') },
        },
      ],
    };
    try {
      const first = await r.run(spec);
      assert.equal(first.run.status, 'failed');
      assert.equal(status(first).ok_out, 'succeeded');
      assert.equal(status(first).late_out, 'cancelled');
      const aWritten = fs.statSync(path.join(out, 'a.csv')).mtimeMs;
      fs.rmSync(path.join(out, 'a.csv'));
      broken = false;
      const second = await r.run(spec); // same parameters: resumes the failed run
      assert.equal(second.resumed, true);
      assert.equal(second.run.id, first.run.id);
      assert.equal(second.run.status, 'succeeded');
      assert.equal(second.run.attempts, 2);
      assert.ok(!fs.existsSync(path.join(out, 'a.csv')), 'the succeeded output stage did not run again');
      assert.ok(aWritten > 0);
      assert.equal(fs.readFileSync(path.join(out, 'b.csv'), 'utf8').trim().split('\n').length, 5);
      const third = await r.run(spec);
      assert.equal(third.reused, true);
      const forced = await r.run(spec, { force: true });
      assert.notEqual(forced.run.id, first.run.id);
      const withParam = await r.run(spec, { params: { other: 1 } });
      assert.notEqual(withParam.run.id, forced.run.id, 'other parameters are another run');
    } finally {
      await r.close();
    }
  });

  test('backfill runs one run per partition and re-runs only failed or missing partitions', async () => {
    const r = runner('backfill');
    const out = path.join(dir, 'backfill-out');
    const failDays = new Set(['2024-03-02']);
    const gate = function gate(rows: RecordBatch): RecordBatch {
      const day = String(rows[0]?.day);
      if (failDays.has(day)) throw new Error(`no data for ${day}`);
      return rows;
    };
    const spec: PipelineInput = {
      name: 'daily',
      stages: [
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a pipeline parameter, not a template
        { id: 'src', type: 'ingest', source: { kind: 'sql', sql: "SELECT '${partition}' AS day, 1 AS n" } },
        { id: 't', type: 'transform', inputs: ['src'], rules: [{ fn: gate }] },
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a pipeline parameter, not a template
        { id: 'o', type: 'output', inputs: ['t'], target: { kind: 'file', path: path.join(out, '${partition}.csv') } },
      ],
    };
    try {
      const first = await r.backfill(spec, { from: '2024-03-01', to: '2024-03-03' });
      assert.deepEqual(
        first.partitions.map((p) => [p.partition, p.status, p.action]),
        [
          ['2024-03-01', 'succeeded', 'created'],
          ['2024-03-02', 'failed', 'created'],
          ['2024-03-03', 'succeeded', 'created'],
        ],
      );
      failDays.clear();
      const second = await r.backfill(spec, { from: '2024-03-01', to: '2024-03-04', concurrency: 2 });
      assert.deepEqual(
        second.partitions.map((p) => [p.partition, p.status, p.action]),
        [
          ['2024-03-01', 'succeeded', 'skipped'],
          ['2024-03-02', 'succeeded', 'resumed'],
          ['2024-03-03', 'succeeded', 'skipped'],
          ['2024-03-04', 'succeeded', 'created'],
        ],
      );
      assert.equal(second.partitions[1]!.runId, first.partitions[1]!.runId);
      assert.deepEqual(fs.readdirSync(out).sort(), [
        '2024-03-01.csv',
        '2024-03-02.csv',
        '2024-03-03.csv',
        '2024-03-04.csv',
      ]);
      assert.match(fs.readFileSync(path.join(out, '2024-03-04.csv'), 'utf8'), /2024-03-04/);
      assert.equal(r.store.listRuns({ pipeline: 'daily' }).length, 4);
    } finally {
      await r.close();
    }
  });

  test('partition ranges by day, hour and month', () => {
    assert.deepEqual(partitionRange('2024-02-28', '2024-03-01'), ['2024-02-28', '2024-02-29', '2024-03-01']);
    assert.deepEqual(partitionRange('2024-01-01T22', '2024-01-02T01', 'hour'), [
      '2024-01-01T22',
      '2024-01-01T23',
      '2024-01-02T00',
      '2024-01-02T01',
    ]);
    assert.deepEqual(partitionRange('2023-11', '2024-02', 'month'), ['2023-11', '2023-12', '2024-01', '2024-02']);
    assert.throws(() => partitionRange('2024-03-02', '2024-03-01'), /from: expected a date not after to/);
    assert.throws(() => partitionRange('yesterday', '2024-03-01'), /from: expected a date/);
  });
});

describe('schedules', () => {
  test('cron expressions: next fire times', () => {
    const at = new Date('2024-01-31T10:17:30Z');
    assert.equal(nextCronTime('*/15 * * * *', at).toISOString(), '2024-01-31T10:30:00.000Z');
    assert.equal(nextCronTime('0 2 * * *', at).toISOString(), '2024-02-01T02:00:00.000Z');
    assert.equal(nextCronTime('@monthly', at).toISOString(), '2024-02-01T00:00:00.000Z');
    assert.equal(
      nextCronTime('0 9 * * 1-5', new Date('2024-02-02T12:00:00Z')).toISOString(),
      '2024-02-05T09:00:00.000Z',
    );
    assert.equal(nextCronTime('0 0 29 2 *', at).toISOString(), '2024-02-29T00:00:00.000Z');
    assert.throws(() => nextCronTime('61 * * * *', at), /minute field "61"/);
    assert.throws(() => nextCronTime('* * *', at), /expected 5 cron fields/);
    assert.equal(partitionForFire('0 2 * * *', new Date('2024-02-01T02:00:00Z')), '2024-02-01');
    assert.equal(partitionForFire('0 * * * *', new Date('2024-02-01T02:00:00Z')), '2024-02-01T02');
  });

  test('a scheduler fires due entries once per fire with the fire partition', async () => {
    const r = runner('sched');
    try {
      const spec: PipelineInput = {
        name: 'scheduled',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a pipeline parameter, not a template
        stages: [{ id: 'src', type: 'ingest', source: { kind: 'sql', sql: "SELECT '${partition}' AS p" } }],
      };
      const s = new Scheduler((sp, partition) => r.run(sp, { partition }));
      s.add(spec, '0 3 * * *', new Date('2024-05-01T00:00:00Z'));
      assert.deepEqual(await s.tick(new Date('2024-05-01T02:59:00Z')), []);
      assert.deepEqual(await s.tick(new Date('2024-05-01T03:00:10Z')), ['2024-05-01']);
      assert.deepEqual(await s.tick(new Date('2024-05-01T03:05:00Z')), []);
      assert.deepEqual(await s.tick(new Date('2024-05-02T03:00:00Z')), ['2024-05-02']);
      assert.deepEqual(
        r.store
          .listRuns()
          .map((x) => [x.partition, x.status])
          .sort(),
        [
          ['2024-05-01', 'succeeded'],
          ['2024-05-02', 'succeeded'],
        ],
      );
    } finally {
      await r.close();
    }
  });
});

test('a run whose function module cannot be loaded is recorded as failed, not left running', async () => {
  const r = runner('badmodule');
  try {
    const spec: PipelineInput = {
      name: 'badmodule',
      stages: [
        { id: 'src', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS x' } },
        { id: 't', type: 'transform', inputs: ['src'], rules: [{ fn: 'missing-module.ts#f' }] },
      ],
    };
    await assert.rejects(r.run(spec, { baseDir: dir }));
    assert.deepEqual(
      r.store.listRuns().map((x) => x.status),
      ['failed'],
    );
  } finally {
    await r.close();
  }
});

test('starting the same parameters while a run is in flight joins it instead of running twice', async () => {
  const r = runner('inflight');
  let calls = 0;
  try {
    const spec: PipelineInput = {
      name: 'inflight',
      stages: [
        { id: 'src', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS x' } },
        {
          id: 't',
          type: 'transform',
          inputs: ['src'],
          rules: [
            {
              fn: async function once(rows: RecordBatch) {
                calls++;
                await new Promise((res) => setTimeout(res, 30));
                return rows;
              },
            },
          ],
        },
      ],
    };
    const a = r.start(spec);
    const b = r.start(spec);
    assert.equal(a.runId, b.runId);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.run.status, 'succeeded');
    assert.equal(rb.run.id, ra.run.id);
    assert.equal(calls, 1);
    assert.equal(r.store.listRuns().length, 1);
  } finally {
    await r.close();
  }
});
