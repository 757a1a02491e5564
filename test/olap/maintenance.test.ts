import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OlapEngine } from '../../src/olap/index.ts';
import { tempDir } from './helpers.ts';

describe('compaction and retention', () => {
  let dir: string;
  let engine: OlapEngine;
  const ingest = (day: number, users: string[]) =>
    engine.ingest({
      type: 'index',
      spec: {
        dataSchema: {
          dataSource: 'm',
          timestampSpec: { column: 'ts' },
          dimensionsSpec: { dimensions: ['k'] },
          metricsSpec: [
            { type: 'count', name: 'count' },
            { type: 'longSum', name: 'v', fieldName: 'v' },
            { type: 'thetaSketch', name: 'u', fieldName: 'user' },
            { type: 'stringFirst', name: 'first', fieldName: 'user' },
          ],
          granularitySpec: { segmentGranularity: 'day', queryGranularity: 'day' },
        },
        ioConfig: {
          inputSource: {
            type: 'inline',
            data: users
              .map((u, i) => JSON.stringify({ ts: `2020-01-0${day}T0${i}:00:00Z`, k: 'a', v: 1, user: u }))
              .join('\n'),
          },
          inputFormat: { type: 'json' },
          appendToExisting: true,
        },
      },
    });
  const summary = async () =>
    (
      (await engine.query(
        {
          queryType: 'groupBy',
          dataSource: 'm',
          intervals: ['2020/2021'],
          granularity: 'all',
          dimensions: ['k'],
          aggregations: [
            { type: 'longSum', name: 'n', fieldName: 'count' },
            { type: 'longSum', name: 'v', fieldName: 'v' },
            { type: 'thetaSketch', name: 'u', fieldName: 'u' },
            { type: 'stringFirst', name: 'first', fieldName: 'first' },
            { type: 'count', name: 'rows' },
          ],
        },
        { useCache: false },
      )) as { event: Record<string, unknown> }[]
    )[0]?.event;

  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir });
    await ingest(1, ['x', 'y']);
    await ingest(1, ['y', 'z']);
    await ingest(1, ['w']);
    await ingest(2, ['q']);
  });
  after(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('compaction merges the partitions of an interval, rolling rows up, with the same query results', async () => {
    const before = await summary();
    assert.equal(engine.store.datasources.get('m')!.segments.length, 4);
    const id = engine.submitTask({ type: 'compact', dataSource: 'm', interval: '2020-01-01/2020-01-03' });
    await engine.task(id).done;
    assert.equal(engine.task(id).status, 'SUCCESS', String(engine.task(id).errorMsg));
    const segs = engine.store.datasources.get('m')!.segments;
    assert.deepEqual(
      segs.map((s) => [new Date(s.interval.start).toISOString().slice(0, 10), s.rows]),
      [
        ['2020-01-01', 1],
        ['2020-01-02', 1],
      ],
    );
    const after = await summary();
    assert.deepEqual({ ...after, rows: undefined }, { ...before, rows: undefined });
    assert.equal(before!.rows, 4n);
    assert.equal(after!.rows, 2n);
    assert.equal(after!.u, 5);
    assert.equal(after!.first, 'x');
    const files = fs.readdirSync(path.join(engine.store.dsDir('m'), 'segments'));
    assert.equal(files.length, 2);
  });

  test('retention rules drop old segments (rows, files, metadata) and persist', async () => {
    const dropped = await engine.setRules('m', [
      { type: 'loadByInterval', interval: '2020-01-02/2020-01-03' },
      { type: 'dropForever' },
    ]);
    assert.equal(dropped.length, 1);
    const s = await summary();
    assert.equal(s!.n, 1n);
    assert.equal(engine.store.datasources.get('m')!.segments.length, 1);
    assert.equal(fs.readdirSync(path.join(engine.store.dsDir('m'), 'segments')).length, 1);
    assert.deepEqual(
      engine.rules().m?.map((r) => r.type),
      ['loadByInterval', 'dropForever'],
    );
    await assert.rejects(engine.setRules('m', [{ type: 'loadByPeriod', period: 'P1X' }]), /rules\[0\]\.period/);
  });
});
