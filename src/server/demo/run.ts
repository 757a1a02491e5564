/**
 * The demo: starts the platform in a fresh data directory and plays the story with generated commerce events
 * through real topics: stream job -> CEP job -> exactly-once lake sink -> streaming datasources -> daily
 * pipeline, then reports what every stage did.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { createTable, loadTable, type Table } from '../../lake/index.ts';
import { embeddedClient, type LogClient, partitionForKey } from '../../log/index.ts';
import { LineageGraph, type RunResult, StreamingLineage } from '../../pipeline/index.ts';
import { KafkaStreams } from '../../streams/index.ts';
import { type Platform, startPlatform } from '../platform.ts';
import { closingRecords, type GeneratedRecord, generate, type UserProfile } from './generator.ts';
import { type Alert, cepJob, type EnrichmentCounters, enrichmentJob, enrichmentServices, TOPICS } from './jobs.ts';
import { type LakeSink, startLakeSink } from './lake-sink.ts';

export const DEFAULT_EVENTS = 20_000;
/**
 * One partition per topic: with several, the tasks of the stream jobs interleave partitions through the
 * repartition topics in processing order, and a replayed day of events falls behind the windows' grace.
 */
export const PARTITIONS = 1;

export interface DemoOptions {
  /** Data directory (default: a fresh temp dir). */
  dataDir?: string;
  events?: number;
  seed?: number;
  httpPort?: number;
  kafkaPort?: number;
  host?: string;
  /** Progress bars and report go here (default process.stdout). */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Show progress bars (default: when `out` is a TTY). */
  progress?: boolean;
}

export interface StageFigure {
  stage: string;
  records: number;
  seconds: number;
  perSecond: number;
}

export interface DemoReport {
  dataDir: string;
  consoleUrl: string;
  kafka: string;
  events: { produced: number; valid: number; invalid: number; outOfOrder: number; users: number };
  stages: StageFigure[];
  deadLetters: number;
  enrichment: { fallbacks: number; slowCalls: number };
  windows: { countryWindows: number; typeWindows: number; droppedLate: number };
  alerts: { count: number; sample: Alert[] };
  tables: {
    name: string;
    rows: number;
    snapshots: { snapshotId: string; operation: string; addedRows: number }[];
    columns: string[];
    partitionSpec: string;
  }[];
  schemaChanges: string[];
  queries: { title: string; query: string; rows: unknown[] }[];
  pipeline: {
    status: string;
    stages: { id: string; status: string; rows: number | null }[];
    quality: number | null;
    dimensions: Record<string, number>;
  };
  lineage: { from: string; to: string; job: string }[];
  totalSeconds: number;
}

export interface RunningDemo {
  report: DemoReport;
  platform: Platform;
  close(): Promise<void>;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PATTERN_FILE = path.resolve(HERE, '../../../examples/patterns/high-value-purchase.json');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function endOffsets(client: LogClient, topic: string): Promise<Map<number, bigint>> {
  const admin = client.admin();
  try {
    const d = await admin.describeTopic(topic);
    return new Map(d.partitions.map((p) => [p.partition, p.highWatermark]));
  } finally {
    await admin.close();
  }
}

/** Reads every committed record of a topic (read_committed). */
export async function readTopic(client: LogClient, topic: string): Promise<{ key: string; value: unknown }[]> {
  const ends = await endOffsets(client, topic);
  const consumer = client.consumer({ isolation: 'read_committed' });
  const out: { key: string; value: unknown }[] = [];
  try {
    const tps = [...ends.keys()].map((partition) => ({ topic, partition }));
    consumer.assign(tps);
    for (const tp of tps) consumer.seek(tp, 0n);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const done = tps.every((tp) => (consumer.position(tp) ?? 0n) >= (ends.get(tp.partition) ?? 0n));
      if (done || Date.now() > deadline) break;
      for (const r of await consumer.poll(100)) {
        const text = r.value?.toString('utf8') ?? 'null';
        let value: unknown = text;
        try {
          value = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        out.push({ key: r.key?.toString('utf8') ?? '', value });
      }
    }
  } finally {
    await consumer.close();
  }
  return out;
}

async function waitFor(what: string | (() => string), ok: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline)
      throw new Error(`demo: timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(100);
  }
}

async function httpJson(base: string, p: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const r = await fetch(base + p, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: r.status, json };
}

export function eventsSupervisorSpec(topic: string, dataSource: string) {
  return {
    type: 'kafka',
    spec: {
      dataSchema: {
        dataSource,
        timestampSpec: { column: 'timestamp', format: 'millis' },
        dimensionsSpec: { dimensions: ['eventType', 'country', 'tier', 'device'] },
        metricsSpec: [
          { type: 'count', name: 'count' },
          { type: 'doubleSum', name: 'value', fieldName: 'value' },
          { type: 'HLLSketchBuild', name: 'users_hll', fieldName: 'userId' },
          { type: 'thetaSketch', name: 'users_theta', fieldName: 'userId' },
          { type: 'quantilesDoublesSketch', name: 'value_sketch', fieldName: 'value' },
        ],
        granularitySpec: { segmentGranularity: 'DAY', queryGranularity: 'MINUTE', rollup: true },
      },
      tuningConfig: { type: 'kafka', intermediatePersistPeriod: 'PT3S' },
      ioConfig: { topic, inputFormat: { type: 'json' }, useEarliestOffset: true },
    },
  };
}

function analyticsSupervisorSpec(topic: string, dataSource: string) {
  return {
    type: 'kafka',
    spec: {
      dataSchema: {
        dataSource,
        timestampSpec: { column: 'windowStart', format: 'iso' },
        dimensionsSpec: { dimensions: ['eventType'] },
        metricsSpec: [
          { type: 'longSum', name: 'events', fieldName: 'events' },
          { type: 'doubleSum', name: 'value', fieldName: 'value' },
          { type: 'longMax', name: 'users', fieldName: 'users' },
        ],
        granularitySpec: { segmentGranularity: 'DAY', queryGranularity: 'FIVE_MINUTE', rollup: true },
      },
      tuningConfig: { type: 'kafka', intermediatePersistPeriod: 'PT3S' },
      ioConfig: { topic, inputFormat: { type: 'json' }, useEarliestOffset: true },
    },
  };
}

/** The daily per-user pipeline over the lake table, with quality checks, and outputs to a table, a topic and a datasource. */
export function dailyPipeline() {
  return {
    name: 'daily_user_activity',
    description: 'Per user and day: events, purchases and revenue, from the lake events table.',
    stages: [
      { id: 'events', type: 'ingest' as const, source: { kind: 'iceberg' as const, table: 'demo.events' } },
      {
        id: 'daily',
        type: 'transform' as const,
        inputs: ['events'],
        rules: [
          {
            sql:
              "SELECT CAST(CAST(ts AS DATE) AS VARCHAR) AS day, user_id, count(*) AS events, count(*) FILTER (WHERE event_type = 'PURCHASE') AS purchases, " +
              "round(coalesce(sum(value) FILTER (WHERE event_type = 'PURCHASE'), 0), 2) AS revenue, max(country) AS country, max(tier) AS tier " +
              'FROM {{input}} GROUP BY 1, 2',
          },
        ],
      },
      {
        id: 'checked',
        type: 'quality' as const,
        inputs: ['daily'],
        checks: [
          { type: 'row_count' as const, min: 1 },
          { type: 'not_null' as const, column: 'user_id' },
          { type: 'not_null' as const, column: 'day' },
          { type: 'range' as const, column: 'revenue', min: 0 },
          { type: 'range' as const, column: 'events', min: 1 },
          { type: 'custom_sql' as const, name: 'purchases_within_events', where: 'purchases <= events' },
          { type: 'not_null' as const, column: 'tier', severity: 'warn' as const, mostly: 0.9 },
        ],
      },
      {
        id: 'to_lake',
        type: 'output' as const,
        inputs: ['checked'],
        target: {
          kind: 'iceberg' as const,
          table: 'demo.daily_users',
          mode: 'merge' as const,
          key: ['day', 'user_id'],
        },
      },
      {
        id: 'to_topic',
        type: 'output' as const,
        inputs: ['checked'],
        target: { kind: 'topic' as const, topic: 'daily-user-activity', key: 'user_id' },
      },
      {
        id: 'to_datasource',
        type: 'output' as const,
        inputs: ['checked'],
        target: {
          kind: 'datasource' as const,
          dataSource: 'daily_users',
          timestampColumn: 'day',
          dimensions: ['user_id', 'country', 'tier'],
          metrics: [
            { type: 'longSum', name: 'events', fieldName: 'events' },
            { type: 'longSum', name: 'purchases', fieldName: 'purchases' },
            { type: 'doubleSum', name: 'revenue', fieldName: 'revenue' },
          ],
        },
      },
    ],
  };
}

const brokerLine = (fields: object, msg: string): void => {
  process.stderr.write(
    `kafka broker: ${msg} ${JSON.stringify(fields, (_k, v) => (v instanceof Error ? v.message : v))}\n`,
  );
};

/** Runs the demo; the platform keeps running until `close()`. */
export async function runDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const t0 = performance.now();
  const out = options.out ?? process.stdout;
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-demo-'));
  const nEvents = options.events ?? DEFAULT_EVENTS;
  const host = options.host ?? '127.0.0.1';
  const say = (line: string) => out.write(`${line}\n`);
  say(`Tributary demo: ${nEvents.toLocaleString('en-US')} events, data in ${dataDir}`);

  const platform = await startPlatform({
    dataDir,
    host,
    kafkaPort: options.kafkaPort ?? 0,
    httpPort: options.httpPort ?? 0,
    // The demo prints its own progress: the listener reports only warnings and errors, on stderr.
    brokerLogger: { info() {}, warn: brokerLine, error: brokerLine },
  });
  const client = embeddedClient(platform.log);
  const base = `http://${host}:${platform.httpPort}`;
  const stateDir = path.join(dataDir, 'streams');
  const jobs: KafkaStreams[] = [];
  const detachJobs: (() => void)[] = [];
  let sink: LakeSink | undefined;
  let bars: cliProgress.MultiBar | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const stopWork = async () => {
    if (ticker) clearInterval(ticker);
    bars?.stop();
    for (const detach of detachJobs.splice(0)) detach();
    for (const j of jobs) await j.close().catch(() => {});
    jobs.length = 0;
    await sink?.stop().catch(() => {});
    sink = undefined;
  };
  const closeAll = async () => {
    await stopWork();
    await platform.close();
  };

  try {
    // Topics, all with the same partition count (the jobs' sources are co-partitioned).
    const admin = client.admin();
    const existing = new Set(await admin.listTopics());
    for (const t of [...Object.values(TOPICS), 'daily-user-activity'])
      if (!existing.has(t)) await admin.createTopic(t, { partitions: PARTITIONS });
    await admin.close();

    // The generated story.
    const gen = generate({ events: nEvents, seed: options.seed ?? 42 });
    const closing = closingRecords(gen.last, 12);
    const records: GeneratedRecord[] = [...gen.records, ...closing];
    const valid = records.filter((r) => r.kind === 'valid').length;
    let outOfOrder = 0;
    let maxTs = 0;
    for (const r of records) {
      if (r.kind !== 'valid') continue;
      if (r.timestamp < maxTs) outOfOrder++;
      maxTs = Math.max(maxTs, r.timestamp);
    }

    // User profiles: a lake table, read back for the enrichment lookups.
    if (!(await platform.catalog.namespaceExists(['demo']))) await platform.catalog.createNamespace(['demo']);
    const usersId = { namespace: ['demo'], name: 'users' };
    const usersTable: Table = (await platform.catalog.tableExists(usersId))
      ? await loadTable(platform.catalog, usersId)
      : await createTable(platform.catalog, usersId, {
          schema: {
            fields: [
              { id: 1, name: 'user_id', required: true, type: 'string' },
              { id: 2, name: 'tier', required: true, type: 'string' },
              { id: 3, name: 'signup_year', required: false, type: 'int' },
            ] as never,
          },
        });
    if (usersTable.currentSnapshot() === undefined)
      await usersTable.append(
        gen.profiles.map((p) => ({ user_id: p.userId, tier: p.tier, signup_year: p.signupYear })),
      );
    const profiles = new Map<string, UserProfile>();
    for (const r of await usersTable.rows())
      profiles.set(String(r.user_id), {
        userId: String(r.user_id),
        tier: String(r.tier) as UserProfile['tier'],
        signupYear: Number(r.signup_year),
      });

    // 4. Real-time datasources (Kafka supervisors), submitted over the Druid API.
    for (const [spec, name] of [
      [eventsSupervisorSpec(TOPICS.enriched, 'commerce_events'), 'commerce_events'],
      [analyticsSupervisorSpec(TOPICS.analytics, 'event_type_5m'), 'event_type_5m'],
    ] as const) {
      const r = await httpJson(base, '/druid/indexer/v1/supervisor', spec);
      if (r.status !== 200) throw new Error(`demo: supervisor ${name} refused: ${JSON.stringify(r.json)}`);
    }

    // 3. The exactly-once lake sink.
    sink = await startLakeSink({ client, catalog: platform.catalog, topic: TOPICS.enriched, partitions: PARTITIONS });

    // 1. and 2. The stream jobs, exactly-once on the log.
    const counters: EnrichmentCounters = { calls: 0, slow: 0 };
    const enrichTopology = enrichmentJob(enrichmentServices(profiles, counters));
    const enrich = new KafkaStreams(enrichTopology, {
      applicationId: 'demo-enrich',
      client,
      stateDir,
      processingGuarantee: 'exactly_once',
      commitIntervalMs: 200,
      deserializationErrors: { deadLetterTopic: TOPICS.deadLetter },
    });
    const patternJson = JSON.parse(fs.readFileSync(PATTERN_FILE, 'utf8')) as unknown;
    const cepTopology = cepJob(patternJson);
    const cep = new KafkaStreams(cepTopology, {
      applicationId: 'demo-cep',
      client,
      stateDir,
      processingGuarantee: 'exactly_once',
      commitIntervalMs: 200,
    });
    jobs.push(enrich, cep);
    // Lineage of the streaming jobs (OpenLineage events from their state changes), into an in-process graph.
    const streamGraph = new LineageGraph();
    const streamingLineage = new StreamingLineage([streamGraph]);
    streamingLineage.register('demo-enrich', enrichTopology);
    streamingLineage.register('demo-cep', cepTopology);
    await enrich.start();
    await cep.start();
    // The console's jobs page shows them (topology, rates, lag) beside jobs submitted over HTTP.
    detachJobs.push(
      platform.jobs.attach('demo-enrich', enrich, enrichTopology, { sources: [TOPICS.raw], output: TOPICS.stats }),
      platform.jobs.attach('demo-cep', cep, cepTopology, { sources: [TOPICS.enriched], output: TOPICS.alerts }),
    );

    // Progress bars.
    const tty = options.progress ?? out.isTTY === true;
    // Each stage's time runs from the first event produced to the moment it has seen every event.
    const clock: Record<string, { start: number; end?: number }> = {};
    let tProduce = performance.now();
    const stamp = (stage: string, n: number, total: number) => {
      let c = clock[stage];
      if (c === undefined) {
        c = { start: tProduce };
        clock[stage] = c;
      }
      if (n >= total && c.end === undefined) c.end = performance.now();
    };
    const counts = { produced: 0, enriched: 0, cep: 0, lake: 0, olap: 0 };
    const olapProcessed = async () => {
      const r = await httpJson(base, '/druid/indexer/v1/supervisor/commerce_events/status');
      const p = (r.json as { payload?: { rowStats?: { processed?: number } } }).payload;
      return Number(p?.rowStats?.processed ?? 0);
    };
    const refresh = async () => {
      counts.enriched = enrich.metrics().recordsIn;
      counts.cep = cep.metrics().recordsIn;
      counts.lake = sink?.stats.rows ?? counts.lake;
      counts.olap = await olapProcessed().catch(() => counts.olap);
      stamp('stream job (validate, enrich, window)', counts.enriched, records.length);
      stamp('CEP job (pattern, analytics)', counts.cep, valid);
      stamp('lake sink (Iceberg, exactly-once)', counts.lake, valid);
      stamp('datasource (Kafka supervisor)', counts.olap, valid);
    };
    if (tty) {
      bars = new cliProgress.MultiBar(
        {
          format: ' {label} |{bar}| {value}/{total}',
          hideCursor: true,
          clearOnComplete: false,
          stream: out as NodeJS.WritableStream as never,
        },
        cliProgress.Presets.shades_classic,
      );
    }
    const bar = (label: string, total: number) => bars?.create(total, 0, { label: label.padEnd(22) });
    const bProduced = bar('produce events', records.length);
    const bEnriched = bar('stream job', records.length);
    const bCep = bar('CEP job', valid);
    const bLake = bar('Iceberg sink', valid);
    const bOlap = bar('datasource ingest', valid);
    const draw = () => {
      bProduced?.update(counts.produced);
      bEnriched?.update(counts.enriched);
      bCep?.update(counts.cep);
      bLake?.update(counts.lake);
      bOlap?.update(counts.olap);
    };
    let refreshing = false;
    ticker = setInterval(() => {
      if (refreshing) return;
      refreshing = true;
      refresh()
        .then(draw, () => {})
        .finally(() => {
          refreshing = false;
        });
    }, 250);

    // Produce the events (idempotent producer), in chunks.
    const producer = client.producer({ lingerMs: 5 });
    tProduce = performance.now();
    const chunk = 2000;
    for (let i = 0; i < records.length; i += chunk) {
      const slice = records.slice(i, i + chunk);
      await producer.send(
        slice.map((r) => ({
          topic: TOPICS.raw,
          key: r.key,
          value: r.value,
          timestamp: r.timestamp,
          partition: partitionForKey(Buffer.from(r.key), PARTITIONS),
        })),
      );
      counts.produced += slice.length;
      draw();
    }
    await producer.flush();
    await producer.close();
    const produceSeconds = (performance.now() - tProduce) / 1000;

    // Wait for every stage to drain.
    await enrich.waitUntilProcessed(120_000);
    await cep.waitUntilProcessed(120_000);
    const enrichedEnd = await endOffsets(client, TOPICS.enriched);
    await waitFor(
      () => `the lake sink (last error: ${sink?.stats.lastError ?? 'none'})`,
      async () => {
        const c = sink?.committed() ?? new Map();
        return [...enrichedEnd].every(([p, end]) => (c.get(p) ?? 0n) >= end);
      },
    );
    // Datasources: every record of their topic processed (offsets alone do not say it: markers take offsets too).
    const analyticsRecords = (await readTopic(client, TOPICS.analytics)).length;
    for (const [ds, expected] of [
      ['commerce_events', valid],
      ['event_type_5m', analyticsRecords],
    ] as const) {
      let seen = 0;
      await waitFor(
        () => `datasource ${ds} (${seen} of ${expected} records)`,
        async () => {
          const r = await httpJson(base, `/druid/indexer/v1/supervisor/${ds}/status`);
          const st = (r.json as { payload?: { rowStats?: Record<string, number> } }).payload?.rowStats ?? {};
          seen = Number(st.processed ?? 0) + Number(st.unparseable ?? 0) + Number(st.thrownAway ?? 0);
          return seen >= expected;
        },
      );
    }
    await refresh();
    draw();
    if (ticker) clearInterval(ticker);
    ticker = undefined;
    bars?.stop();
    bars = undefined;

    // 5. The daily pipeline from the lake.
    const tPipe = performance.now();
    const runner = platform.pipelines;
    const result: RunResult = await runner.run(dailyPipeline() as never, { baseDir: dataDir, force: true });
    const pipeSeconds = (performance.now() - tPipe) / 1000;
    const graph: LineageGraph = runner.lineageGraph();
    await streamingLineage.flush();
    streamingLineage.close();

    // The report.
    const enrichMetrics = enrich.metrics();
    const dead = await readTopic(client, TOPICS.deadLetter);
    const alerts = (await readTopic(client, TOPICS.alerts)).map((r) => r.value as Alert);
    const stats = await readTopic(client, TOPICS.stats);
    const typeWindows = await readTopic(client, TOPICS.analytics);
    const fallbacks = (await readTopic(client, TOPICS.enriched)).filter(
      (r) => (r.value as { enriched?: boolean }).enriched === false,
    ).length;

    const tables: DemoReport['tables'] = [];
    for (const name of ['events', 'users', 'daily_users']) {
      const id = { namespace: ['demo'], name };
      if (!(await platform.catalog.tableExists(id))) continue;
      const t = await loadTable(platform.catalog, id);
      const hist = t.history();
      tables.push({
        name: `demo.${name}`,
        rows: Number(t.currentSnapshot()?.summary['total-records'] ?? 0),
        snapshots: hist.map((h) => ({
          snapshotId: String(h.snapshotId),
          operation: String(h.operation),
          addedRows: Number(h.summary['added-records'] ?? 0),
        })),
        columns: t.schema().fields.map((f) => f.name),
        partitionSpec: t
          .spec()
          .fields.map((f) => `${f.transform}(${t.schema().fields.find((s) => s.id === f['source-id'])?.name ?? '?'})`)
          .join(', '),
      });
    }

    const queries: DemoReport['queries'] = [];
    // Native topN with sketches (Druid SQL loses the aliases of sketch estimates here, so this one is native).
    const topN = {
      queryType: 'topN',
      dataSource: 'commerce_events',
      intervals: ['2000-01-01/2100-01-01'],
      granularity: 'all',
      filter: { type: 'selector', dimension: 'eventType', value: 'PURCHASE' },
      dimension: 'country',
      metric: 'revenue',
      threshold: 5,
      aggregations: [
        { type: 'longSum', name: 'purchases', fieldName: 'count' },
        { type: 'doubleSum', name: 'revenue', fieldName: 'value' },
        { type: 'HLLSketchMerge', name: 'buyers', fieldName: 'users_hll' },
        { type: 'quantilesDoublesSketch', name: 'amounts', fieldName: 'value_sketch' },
      ],
      postAggregations: [
        {
          type: 'quantilesDoublesSketchToQuantile',
          name: 'median_purchase',
          field: { type: 'fieldAccess', fieldName: 'amounts' },
          fraction: 0.5,
        },
      ],
    };
    {
      const r = await httpJson(base, '/druid/v2', topN);
      const rows = Array.isArray(r.json)
        ? (r.json as { result: Record<string, unknown>[] }[]).flatMap((x) =>
            x.result.map(({ amounts: _amounts, ...rest }) => rest),
          )
        : [{ error: r.json }];
      queries.push({
        title:
          'Top countries by purchase revenue (native topN on commerce_events: HLL buyers, median from a quantiles sketch)',
        query: JSON.stringify(topN),
        rows,
      });
    }
    for (const [title, sql] of [
      [
        'Events per type and day (Druid SQL on event_type_5m, fed by the CEP job)',
        'SELECT TIME_FLOOR(__time, \'P1D\') AS "day", eventType, SUM(events) AS events FROM event_type_5m GROUP BY 1, 2 ORDER BY 1, 3 DESC LIMIT 10',
      ],
      [
        'Top spenders per day (Druid SQL on daily_users, written by the pipeline)',
        'SELECT TIME_FLOOR(__time, \'P1D\') AS "day", user_id, SUM(revenue) AS revenue FROM daily_users GROUP BY 1, 2 ORDER BY revenue DESC LIMIT 5',
      ],
    ] as const) {
      const r = await httpJson(base, '/druid/v2/sql', { query: sql });
      queries.push({ title, query: sql, rows: Array.isArray(r.json) ? r.json : [{ error: r.json }] });
    }

    const lineage: DemoReport['lineage'] = [];
    const seen = new Set<string>();
    const edge = (from: string, to: string, job: string) => {
      const k = `${from}>${to}>${job}`;
      if (seen.has(k)) return;
      seen.add(k);
      lineage.push({ from, to, job });
    };
    for (const g of [streamGraph, graph])
      for (const ds of g.datasets())
        for (const w of g.walk(ds, 'downstream')) if (w.depth === 1) edge(ds, w.dataset, w.via.join(' > '));
    // The lake sink and the supervisors are not OpenLineage jobs; their edges are known.
    edge(`topic:${TOPICS.enriched}`, 'iceberg:demo.events', 'lake sink (exactly-once)');
    edge(`topic:${TOPICS.enriched}`, 'datasource:commerce_events', 'supervisor commerce_events');
    edge(`topic:${TOPICS.analytics}`, 'datasource:event_type_5m', 'supervisor event_type_5m');
    lineage.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));

    const lakeRows = sink?.stats.rows ?? 0;
    const schemaChanges = sink?.stats.schemaChanges ?? [];
    const seconds = (name: string) => {
      const c = clock[name];
      return c?.end === undefined ? (performance.now() - (c?.start ?? t0)) / 1000 : (c.end - c.start) / 1000;
    };
    const figure = (stage: string, n: number, secs: number): StageFigure => ({
      stage,
      records: n,
      seconds: Math.round(secs * 100) / 100,
      perSecond: secs > 0 ? Math.round(n / secs) : 0,
    });
    const olapRows = await olapProcessed();
    const report: DemoReport = {
      dataDir,
      consoleUrl: `${base}/`,
      kafka: `${host}:${platform.kafkaPort}`,
      events: {
        produced: records.length,
        valid,
        invalid: records.length - valid,
        outOfOrder,
        users: gen.users.length,
      },
      stages: [
        figure('produce (idempotent producer)', records.length, produceSeconds),
        figure(
          'stream job (validate, enrich, window)',
          enrichMetrics.recordsIn,
          seconds('stream job (validate, enrich, window)'),
        ),
        figure('CEP job (pattern, analytics)', cep.metrics().recordsIn, seconds('CEP job (pattern, analytics)')),
        figure('lake sink (Iceberg, exactly-once)', lakeRows, seconds('lake sink (Iceberg, exactly-once)')),
        figure('datasource (Kafka supervisor)', olapRows, seconds('datasource (Kafka supervisor)')),
        figure(
          'pipeline (daily per-user table)',
          Number(result.stages.find((s) => s.stageId === 'events')?.rows ?? 0),
          pipeSeconds,
        ),
      ],
      deadLetters: dead.length,
      enrichment: { fallbacks, slowCalls: counters.slow },
      windows: {
        countryWindows: stats.length,
        typeWindows: typeWindows.length,
        droppedLate: enrichMetrics.droppedRecords,
      },
      alerts: { count: alerts.length, sample: alerts.slice(0, 5) },
      tables,
      schemaChanges,
      queries,
      pipeline: {
        status: result.run.status,
        stages: result.stages.map((s) => ({ id: s.stageId, status: s.status, rows: s.rows ?? null })),
        quality: result.quality.score,
        dimensions: result.quality.dimensions,
      },
      lineage,
      totalSeconds: Math.round((performance.now() - t0) / 100) / 10,
    };
    // The stream jobs and the lake sink keep running (idle) until close(), so the console still shows them while
    // the platform stays up.
    return { report, platform, close: closeAll };
  } catch (err) {
    await closeAll().catch(() => {});
    throw err;
  }
}

/** The report as text. */
export function formatReport(r: DemoReport): string {
  const lines: string[] = [];
  const h = (t: string) => lines.push('', `== ${t} ==`);
  const n = (x: number) => x.toLocaleString('en-US');
  lines.push('', `Tributary demo report (${r.totalSeconds} s, data in ${r.dataDir})`);
  h('Events');
  lines.push(
    `  produced ${n(r.events.produced)} (${n(r.events.valid)} valid, ${n(r.events.invalid)} invalid, ${n(r.events.outOfOrder)} out of order) from ${n(r.events.users)} users`,
  );
  h('Events per second per stage');
  for (const s of r.stages)
    lines.push(
      `  ${s.stage.padEnd(40)} ${n(s.records).padStart(9)} records  ${String(s.seconds).padStart(7)} s  ${n(s.perSecond).padStart(9)} /s`,
    );
  lines.push(
    `  dead-letter topic: ${n(r.deadLetters)} records; enrichment fallbacks (500 ms budget): ${n(r.enrichment.fallbacks)}; late records dropped by windows: ${n(r.windows.droppedLate)}`,
  );
  lines.push(
    `  5-minute windows: ${n(r.windows.countryWindows)} per country, ${n(r.windows.typeWindows)} per event type`,
  );
  h(`Alerts: LOGIN -> PURCHASE > 1000 -> LOGOUT within 30 minutes (${n(r.alerts.count)})`);
  for (const a of r.alerts.sample)
    lines.push(
      `  ${a.userId} spent ${a.amount.toFixed(2)} (${a.country}) at ${new Date(a.purchaseAt).toISOString()}, session ${Math.round(a.sessionMs / 60_000)} min`,
    );
  h('Tables');
  for (const t of r.tables) {
    lines.push(
      `  ${t.name}: ${n(t.rows)} rows, partitioned by ${t.partitionSpec || '(none)'}, ${t.snapshots.length} snapshots`,
    );
    lines.push(`    columns: ${t.columns.join(', ')}`);
    for (const s of t.snapshots.slice(-3))
      lines.push(`    snapshot ${s.snapshotId} ${s.operation} +${n(s.addedRows)} rows`);
  }
  for (const c of r.schemaChanges) lines.push(`  schema evolution on demo.events: ${c}`);
  h('Sample queries (Druid API)');
  for (const q of r.queries) {
    lines.push(`  ${q.title}`);
    for (const row of q.rows.slice(0, 5))
      lines.push(
        `    ${JSON.stringify(row, (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 100) / 100 : v))}`,
      );
  }
  h('Pipeline daily_user_activity');
  lines.push(`  status ${r.pipeline.status}`);
  for (const s of r.pipeline.stages) lines.push(`    ${s.id.padEnd(14)} ${s.status.padEnd(10)} ${s.rows ?? ''}`);
  const dims = Object.entries(r.pipeline.dimensions)
    .map(([k, v]) => `${k} ${v.toFixed(3)}`)
    .join(', ');
  lines.push(`  quality score ${r.pipeline.quality === null ? 'n/a' : r.pipeline.quality.toFixed(3)} (${dims})`);
  h('Lineage');
  for (const e of r.lineage) lines.push(`  ${e.from} --[${e.job}]--> ${e.to}`);
  h('Console');
  lines.push(`  ${r.consoleUrl}   (Kafka at ${r.kafka})`);
  return `${lines.join('\n')}\n`;
}
