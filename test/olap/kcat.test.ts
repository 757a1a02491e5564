import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { quietLogger, startKafkaBroker } from '../../src/kafka/index.ts';
import { embeddedClient, openLog } from '../../src/log/index.ts';
import { OlapEngine } from '../../src/olap/index.ts';
import { fixtureText, tempDir } from './helpers.ts';

const KCAT = '/usr/bin/kcat';
const haveKcat = fs.existsSync(KCAT) && spawnSync(KCAT, ['-V']).status === 0;

test('events produced with kcat through the Kafka listener appear in query results', {
  skip: haveKcat ? false : 'kcat is not installed (/usr/bin/kcat); apt-get install -y kcat',
}, async () => {
  const dir = tempDir();
  const log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  const broker = await startKafkaBroker({ log, port: 0, logger: quietLogger });
  const client = embeddedClient(log);
  const engine = await OlapEngine.open({ dataDir: path.join(dir, 'olap'), logClient: client });
  try {
    await log.createTopic('wikipedia', { partitions: 1 });
    const spec = JSON.parse(fixtureText('specs/wikipedia-kafka-supervisor.json'));
    spec.spec.ioConfig.useEarliestOffset = true;
    await engine.submitSupervisor(spec);
    const events = Array.from({ length: 25 }, (_, i) =>
      JSON.stringify({
        time: `2015-09-12T01:00:${String(i).padStart(2, '0')}Z`,
        channel: '#kcat',
        page: `p${i}`,
        user: 'k',
        added: i + 1,
        deleted: 0,
        delta: i + 1,
      }),
    );
    await new Promise<void>((resolve, reject) => {
      const child = spawn(KCAT, ['-P', '-b', `127.0.0.1:${broker.port}`, '-t', 'wikipedia'], {
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kcat exited ${code}: ${err}`))));
      child.stdin.end(`${events.join('\n')}\n`);
    });
    let sum = 0n;
    for (let i = 0; i < 400 && sum !== 325n; i++) {
      const r = (await engine.query(
        {
          queryType: 'timeseries',
          dataSource: 'wikipedia',
          intervals: ['2015-09-12/2015-09-13'],
          granularity: 'all',
          filter: { type: 'selector', dimension: 'channel', value: '#kcat' },
          aggregations: [{ type: 'longSum', name: 'added', fieldName: 'added' }],
        },
        { useCache: false },
      )) as { result: { added: bigint } }[];
      sum = r[0]?.result.added ?? 0n;
      if (sum !== 325n) await new Promise((res) => setTimeout(res, 25));
    }
    assert.equal(sum, 325n);
  } finally {
    await engine.close();
    await client.close();
    await broker.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
