import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { embeddedClient, openLog } from '../../src/log/index.ts';
import { LineageGraph, StreamingLineage } from '../../src/pipeline/index.ts';
import { KafkaStreams, Serdes, StreamsBuilder } from '../../src/streams/index.ts';
import { schemasAvailable, validateRunEvent } from './openlineage.ts';

test('a streaming job emits START and COMPLETE with its source and sink topics', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-streaming-'));
  const log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  const client = embeddedClient(log);
  // biome-ignore lint/suspicious/noExplicitAny: OpenLineage events read as JSON
  const events: Record<string, any>[] = [];
  const graph = new LineageGraph();
  const lineage = new StreamingLineage([{ emit: async (e) => void events.push(e) }, graph]);
  try {
    const admin = client.admin();
    await admin.createTopic('payments', { partitions: 1 });
    await admin.close();
    const b = new StreamsBuilder();
    b.stream<string, string>('payments', { keySerde: Serdes.String(), valueSerde: Serdes.String() })
      .filter((_k, v) => v.length > 0)
      .mapValues((v) => v.toUpperCase())
      .to('payments-clean', { keySerde: Serdes.String(), valueSerde: Serdes.String() });
    const topology = b.build();
    lineage.register('payments-cleaner', topology);
    const streams = new KafkaStreams(topology, { applicationId: 'payments-cleaner', client, commitIntervalMs: 10 });
    await streams.start();
    await streams.close();
    await lineage.flush();
    assert.deepEqual(
      events.map((e) => e.eventType),
      ['START', 'COMPLETE'],
    );
    assert.equal(events[0]!.run.runId, events[1]!.run.runId);
    assert.equal(events[0]!.job.name, 'payments-cleaner');
    assert.equal(events[0]!.job.facets.jobType.processingType, 'STREAMING');
    assert.deepEqual(
      events[1]!.inputs.map((d: { name: string }) => d.name),
      ['payments'],
    );
    assert.deepEqual(
      events[1]!.outputs.map((d: { name: string }) => d.name),
      ['payments-clean'],
    );
    assert.deepEqual(
      graph.walk('topic:payments-clean', 'upstream').map((d) => d.dataset),
      ['topic:payments'],
    );
    if (!schemasAvailable()) return t.skip('../shared/reference/openlineage is missing');
    for (const e of events) assert.deepEqual(validateRunEvent(e), []);
  } finally {
    lineage.close();
    await client.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
