import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { TributaryError } from '../core/index.ts';
import type { Consumer, LogClient } from '../log/index.ts';
import { type AggContext, aggregateSql } from './aggregators.ts';
import type { ColumnInfo } from './columns.ts';
import { readerSql, rollupFromRaw } from './ingest.ts';
import type { AggregatorSpec, IngestionSpec } from './spec.ts';
import { ident, num } from './sql.ts';
import { type SegmentStore, type StreamOffsets, tableSql } from './store.ts';
import { bucketSql, nextBucket } from './time.ts';

export type SupervisorState = 'RUNNING' | 'SUSPENDED' | 'STOPPED';

export interface SupervisorStats {
  processed: number;
  unparseable: number;
  thrownAway: number;
  persists: number;
  lastError: string | null;
}

/** Pending (not yet persisted) streaming rows live here, per datasource, until a persist publishes them. */
function pendingSql(ds: string): string {
  return `olap_rt.${ident(ds)}`;
}

/**
 * A Kafka supervisor for one datasource: reads a topic through a LogClient, rolls micro-batches up into
 * the datasource table at once (queryable immediately), and periodically persists the pending rows as
 * segments with the consumed offsets in the same metadata write (exactly once across crashes).
 */
export class KafkaSupervisor {
  readonly id: string;
  readonly spec: IngestionSpec;
  readonly rawSpec: unknown;
  state: SupervisorState = 'SUSPENDED';
  readonly stats: SupervisorStats = { processed: 0, unparseable: 0, thrownAway: 0, persists: 0, lastError: null };
  /** Next offset to read per partition (consumed, maybe not yet persisted). */
  readonly offsets = new Map<number, bigint>();
  readonly latest = new Map<number, bigint>();
  private readonly store: SegmentStore;
  private readonly client: LogClient;
  private readonly onChange: () => void;
  private consumer: Consumer | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private lastPersist = Date.now();
  private pendingRows = 0;
  private readonly tmpDir: string;

  constructor(store: SegmentStore, client: LogClient, spec: IngestionSpec, rawSpec: unknown, onChange: () => void) {
    this.store = store;
    this.client = client;
    this.spec = spec;
    this.rawSpec = rawSpec;
    this.id = spec.dataSchema.dataSource;
    this.onChange = onChange;
    this.tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'olap-stream-'));
  }

  get topic(): string {
    return this.spec.kafka!.topic;
  }

  async start(): Promise<void> {
    if (this.state === 'RUNNING') return;
    this.stopping = false;
    this.state = 'RUNNING';
    this.lastPersist = Date.now();
    // Connect now when the topic exists (so "latest" means now); otherwise the loop keeps trying.
    await this.connect();
    this.loop = this.run();
  }

  /** Assigns every partition and seeks to the committed offsets (or earliest/latest). False on failure. */
  private async connect(): Promise<boolean> {
    try {
      const admin = this.client.admin();
      let parts: { partition: number; highWatermark: bigint; logStartOffset: bigint }[];
      try {
        parts = (await admin.describeTopic(this.topic)).partitions;
      } finally {
        await admin.close();
      }
      const committed = this.store.datasources.get(this.id)?.streamOffsets;
      const consumer = this.client.consumer({ isolation: 'read_committed', autoCommit: false, maxPollRecords: 50_000 });
      consumer.assign(parts.map((p) => ({ topic: this.topic, partition: p.partition })));
      this.offsets.clear();
      for (const p of parts) {
        const c = committed?.topic === this.topic ? committed.partitions[String(p.partition)] : undefined;
        const at =
          c !== undefined ? BigInt(c) : this.spec.kafka!.useEarliestOffset ? p.logStartOffset : p.highWatermark;
        consumer.seek({ topic: this.topic, partition: p.partition }, at);
        this.offsets.set(p.partition, at);
      }
      this.consumer = consumer;
      this.stats.lastError = null;
      return true;
    } catch (err) {
      this.stats.lastError = (err as Error).message;
      return false;
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping && !this.consumer) {
      await new Promise((r) => setTimeout(r, 250));
      if (!this.stopping) await this.connect();
    }
    while (!this.stopping) {
      try {
        const records = await this.consumer!.poll(100);
        if (records.length) await this.ingestRecords(records);
        const due = Date.now() - this.lastPersist >= this.spec.intermediatePersistPeriodMs;
        if (this.pendingRows > 0 && (due || this.pendingRows >= this.spec.maxRowsInMemory)) await this.persist();
      } catch (err) {
        this.stats.lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Rolls a batch of records up into the table and the pending table. */
  private async ingestRecords(records: { partition: number; offset: bigint; value: Buffer | null }[]): Promise<void> {
    const lines: string[] = [];
    let bad = 0;
    for (const r of records) {
      const text = r.value?.toString('utf8').trim() ?? '';
      if (text.startsWith('{') && !text.includes('\n')) lines.push(text);
      else {
        try {
          const v = JSON.parse(text);
          if (v && typeof v === 'object' && !Array.isArray(v)) lines.push(JSON.stringify(v));
          else bad++;
        } catch {
          bad++;
        }
      }
    }
    const file = path.join(this.tmpDir, 'batch.json');
    fs.writeFileSync(file, lines.join('\n'));
    await this.store.serialize(() =>
      this.store.withConn(async (c) => {
        const existing = this.store.datasources.get(this.id)?.columns;
        const batch = lines.length
          ? await rollupFromRaw(c, this.spec.dataSchema, readerSql([file], { type: 'json' }), undefined, existing)
          : undefined;
        // Streamed rows bring new values all the time: this datasource keeps plain VARCHAR strings.
        if (batch) await this.store.plainStrings(c, this.id);
        await c.run('BEGIN TRANSACTION');
        try {
          if (batch) {
            await this.store.ensureColumns(c, this.id, existing, batch.columns);
            const cols = existing ? mergeInto(existing, batch.columns) : batch.columns;
            await ensurePending(c, this.id, cols, this.store);
            await c.run(`INSERT INTO ${tableSql(this.id)} BY NAME SELECT * EXCLUDE (__olap_seg) FROM olap_rolled`);
            await c.run(`INSERT INTO ${pendingSql(this.id)} BY NAME SELECT * EXCLUDE (__olap_seg) FROM olap_rolled`);
            const maxT = (
              await c.runAndReadAll('SELECT epoch_ms(max("__time")) AS m, count(*) AS n FROM olap_rolled')
            ).getRowObjectsJS()[0]!;
            await c.run('COMMIT');
            this.store.noteColumns(
              this.id,
              batch.columns,
              this.spec.dataSchema.rollup,
              this.spec.dataSchema.queryGranularity,
              maxT.m === null ? -8.64e15 : Number(maxT.m),
            );
            this.pendingRows += Number(maxT.n);
            this.stats.processed += batch.stats.processed;
            this.stats.thrownAway += batch.stats.thrownAway;
            this.stats.unparseable +=
              batch.stats.unparseable +
              (lines.length - batch.stats.processed - batch.stats.thrownAway - batch.stats.unparseable);
          } else await c.run('COMMIT');
        } catch (err) {
          await c.run('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }),
    );
    this.stats.unparseable += bad;
    for (const r of records) {
      const next = r.offset + 1n;
      if ((this.offsets.get(r.partition) ?? -1n) < next) this.offsets.set(r.partition, next);
    }
    this.onChange();
  }

  /** Publishes pending rows as segments together with the offsets consumed so far. */
  async persist(): Promise<void> {
    const offsets: StreamOffsets = {
      topic: this.topic,
      partitions: Object.fromEntries([...this.offsets].map(([p, o]) => [String(p), o.toString()])),
    };
    await this.store.serialize(() =>
      this.store.withConn(async (c) => {
        const meta = this.store.datasources.get(this.id);
        if (!meta) return;
        const exists = (
          await c.runAndReadAll(
            `SELECT count(*) AS n FROM duckdb_tables() WHERE schema_name = 'olap_rt' AND table_name = $1`,
            [this.id],
          )
        ).getRowObjectsJS()[0]!;
        const ds = this.spec.dataSchema;
        const seg =
          ds.segmentGranularity.kind === 'all' || ds.segmentGranularity.kind === 'none'
            ? '0::BIGINT'
            : bucketSql(ds.segmentGranularity, '"__time"');
        if (Number(exists.n) === 0) return;
        const select = rerollSql(meta.columns, ds.rollup, seg, pendingSql(this.id));
        await c.run(`CREATE OR REPLACE TEMP TABLE olap_rolled AS ${select}`);
        const segRows = (
          await c.runAndReadAll('SELECT __olap_seg AS s, count(*) AS n FROM olap_rolled GROUP BY 1 ORDER BY 1')
        ).getRowObjectsJS();
        const sg = ds.segmentGranularity;
        const buckets = segRows.map((r) => {
          const start = Number(r.s);
          const all = sg.kind === 'all' || sg.kind === 'none';
          return {
            seg: start,
            start: all ? -8.64e15 : start,
            end: all ? 8.64e15 : (nextBucket(sg, start) ?? start + 86_400_000),
            rows: Number(r.n),
          };
        });
        await this.store.publish(
          c,
          this.id,
          {
            columns: meta.columns,
            stats: { processed: 0, processedWithError: 0, thrownAway: 0, unparseable: 0 },
            buckets,
          },
          {
            append: true,
            insert: false,
            maxRowsPerSegment: this.spec.maxRowsPerSegment,
            rollup: ds.rollup,
            queryGranularity: ds.queryGranularity,
            streamOffsets: offsets,
          },
        );
        await c.run(`DELETE FROM ${pendingSql(this.id)}`);
      }),
    );
    this.pendingRows = 0;
    this.lastPersist = Date.now();
    this.stats.persists++;
  }

  /** Stops reading; persists pending rows first unless `persist` is false. */
  async stop(persist = true): Promise<void> {
    this.stopping = true;
    await this.loop;
    this.loop = undefined;
    await this.consumer?.close();
    this.consumer = undefined;
    if (persist && this.pendingRows > 0) await this.persist();
    this.state = 'SUSPENDED';
  }

  async refreshLatest(): Promise<void> {
    const admin = this.client.admin();
    try {
      for (const p of (await admin.describeTopic(this.topic)).partitions) this.latest.set(p.partition, p.highWatermark);
    } finally {
      await admin.close();
    }
  }

  dispose(): void {
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
  }
}

function mergeInto(prev: ColumnInfo[], next: ColumnInfo[]): ColumnInfo[] {
  const out = [...prev];
  for (const c of next) if (!out.some((x) => x.name === c.name)) out.push(c);
  return out;
}

/**
 * SELECT that rolls stored rows up again (metrics merged with themselves), adding `__olap_seg` = segSql.
 * Used for streaming persists and compaction.
 */
export function rerollSql(
  columns: ColumnInfo[],
  rollup: boolean,
  segSql: string,
  from: string,
  where = 'TRUE',
): string {
  const dims = columns.filter((x) => !x.aggregator);
  const metrics = columns.filter((x) => x.aggregator);
  if (!rollup) return `SELECT *, ${segSql} AS __olap_seg FROM ${from} WHERE ${where}`;
  const byName = new Map(columns.map((x) => [x.name, x]));
  const ctx: AggContext = {
    input: (n) => ({ sql: ident(n), col: byName.get(n) }),
    expr: () => 'NULL',
    filter: () => 'TRUE',
    timeMs: 'epoch_ms("__time")',
  };
  const merged = metrics.map(
    (m) => `${aggregateSql(mergeSpec(m), ctx, 'ingest', `metrics.${m.name}`).sql} AS ${ident(m.name)}`,
  );
  return `SELECT "__time", ${[...dims.map((d) => ident(d.name)), ...merged, `${segSql} AS __olap_seg`].join(', ')} FROM ${from} WHERE ${where} GROUP BY ALL`;
}

/** The aggregator that merges a stored metric column with itself (count merges as a sum). */
function mergeSpec(c: ColumnInfo): AggregatorSpec {
  const a = c.aggregator!.type === 'filtered' ? c.aggregator!.aggregator! : c.aggregator!;
  const type = a.type === 'count' ? 'longSum' : a.type === 'cardinality' ? 'HLLSketchMerge' : a.type;
  return { ...a, type, name: c.name, fieldName: c.name, expression: undefined };
}

async function ensurePending(
  c: DuckDBConnection,
  ds: string,
  columns: ColumnInfo[],
  store: SegmentStore,
): Promise<void> {
  await c.run('CREATE SCHEMA IF NOT EXISTS olap_rt');
  // Same layout as the datasource table (created empty from it), widened as columns appear.
  await c.run(`CREATE TABLE IF NOT EXISTS ${pendingSql(ds)} AS SELECT * FROM ${tableSql(ds)} LIMIT 0`);
  const have = new Set(
    (
      await c.runAndReadAll(
        `SELECT column_name FROM duckdb_columns() WHERE schema_name = 'olap_rt' AND table_name = $1`,
        [ds],
      )
    )
      .getRowObjectsJS()
      .map((r) => String(r.column_name)),
  );
  const types = new Map(
    (
      await c.runAndReadAll(
        `SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'druid' AND table_name = $1`,
        [ds],
      )
    )
      .getRowObjectsJS()
      .map((r) => [String(r.column_name), String(r.data_type)]),
  );
  for (const col of columns)
    if (!have.has(col.name))
      await c.run(`ALTER TABLE ${pendingSql(ds)} ADD COLUMN ${ident(col.name)} ${types.get(col.name) ?? 'VARCHAR'}`);
  void store;
  void num;
}

export function requireKafka(spec: IngestionSpec): void {
  if (spec.type !== 'kafka' || !spec.kafka)
    throw new TributaryError('INVALID_ARGUMENT', 'spec.type: expected kafka for a supervisor', { field: 'type' });
}
