import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { TributaryError } from '../core/index.ts';
import {
  type Catalog,
  createTable,
  duckType,
  icebergTypeFromDuck,
  loadTable,
  parseIdentifier,
  planScan,
  type Table,
} from '../lake/index.ts';
import type { LogClient } from '../log/index.ts';
import type { OlapEngine } from '../olap/index.ts';
import { type Column, describe, lit, loadRows, q, queryRows, scalar, toJsonLine } from './duck.ts';
import type { Source, Target } from './spec.ts';

/** What sources and targets reach: the lake catalog, the log and the OLAP engine (each optional). */
export interface Connectors {
  catalog?: Catalog | undefined;
  log?: LogClient | undefined;
  olap?: OlapEngine | undefined;
  baseDir: string;
}

function need<T>(v: T | undefined, what: string, field: string): T {
  if (v === undefined)
    throw new TributaryError('UNAVAILABLE', `${field}: a ${what} is needed for this stage and none is configured`, {
      retriable: false,
      field,
    });
  return v;
}

function fileFormat(p: string, format: string | undefined): string {
  if (format) return format;
  const ext = path.extname(p.replace(/\*+$/, '')).toLowerCase();
  if (ext === '.csv' || ext === '.tsv') return 'csv';
  if (ext === '.parquet') return 'parquet';
  return 'ndjson';
}

/** The dataset id (`kind:name`) a source or target stands for. */
export function datasetId(x: Source | Target, baseDir: string, stageId: string): string {
  switch (x.kind) {
    case 'file':
      return `file:${path.resolve(baseDir, x.path)}`;
    case 'iceberg':
      return `iceberg:${x.table}`;
    case 'topic':
      return `topic:${x.topic}`;
    case 'datasource':
      return `datasource:${x.dataSource}`;
    case 'sql':
      return `sql:${x.name ?? stageId}`;
  }
}

function readerSql(file: string, format: string): string {
  if (format === 'csv') return `read_csv_auto(${lit(file)})`;
  if (format === 'parquet') return `read_parquet(${lit(file)})`;
  return `read_json_auto(${lit(file)}, format = 'newline_delimited')`;
}

/** Reads a source into the table `rel`. */
export async function ingest(
  c: DuckDBConnection,
  conn: Connectors,
  rel: string,
  src: Source,
  field: string,
): Promise<void> {
  switch (src.kind) {
    case 'file': {
      const file = path.resolve(conn.baseDir, src.path);
      if (!/[*?[]/.test(file) && !fs.existsSync(file))
        throw new TributaryError('NOT_FOUND', `${field}.path: file ${file} does not exist`, {
          field: `${field}.path`,
          retriable: false,
        });
      await c.run(`CREATE OR REPLACE TABLE ${rel} AS SELECT * FROM ${readerSql(file, fileFormat(file, src.format))}`);
      return;
    }
    case 'sql':
      await c.run(`CREATE OR REPLACE TABLE ${rel} AS ${src.sql}`);
      return;
    case 'iceberg': {
      const catalog = need(conn.catalog, 'lake catalog', `${field}.table`);
      const table = await loadTable(catalog, parseIdentifier(src.table));
      await readIceberg(c, table, rel, src.filter);
      return;
    }
    case 'topic': {
      const log = need(conn.log, 'log client', `${field}.topic`);
      const rows = await readTopic(log, src.topic, src.metadata);
      await loadRows(c, rel, rows);
      return;
    }
    case 'datasource': {
      const olap = need(conn.olap, 'OLAP engine', `${field}.dataSource`);
      const r = await olap.sql(src.sql ?? `SELECT * FROM ${q(src.dataSource)}`);
      const rows = r.rows.map((row) => Object.fromEntries(r.columns.map((col, i) => [col.name, row[i]])));
      await loadRows(c, rel, rows);
      return;
    }
  }
}

/**
 * Reads an Iceberg table. When the snapshot has no delete files and its data files carry every column
 * by name, DuckDB reads the Parquet files directly (no row conversion); otherwise the lake's scan.
 */
async function readIceberg(c: DuckDBConnection, table: Table, rel: string, filter: string | undefined): Promise<void> {
  const schema = table.schema();
  const cols = schema.fields.map((f) => q(f.name)).join(', ');
  const plan = await planScan(table.metadata, table.io, filter ? { filter } : {});
  const emptySelect = `SELECT ${schema.fields.map((f) => `CAST(NULL AS ${duckType(f.type)}) AS ${q(f.name)}`).join(', ')} LIMIT 0`;
  if (plan.tasks.length === 0) {
    await c.run(`CREATE OR REPLACE TABLE ${rel} AS ${emptySelect}`);
    return;
  }
  if (plan.tasks.every((t) => t.deletes.length === 0)) {
    const files = plan.tasks.map((t) => lit(table.io.resolve(t.file.filePath)));
    const src = `read_parquet([${files.join(', ')}], union_by_name = true)`;
    const have = new Set((await describe(c, `SELECT * FROM ${src}`)).map((x) => x.name));
    if (schema.fields.every((f) => have.has(f.name))) {
      await c.run(`CREATE OR REPLACE TABLE ${rel} AS SELECT ${cols} FROM ${src}${filter ? ` WHERE ${filter}` : ''}`);
      return;
    }
  }
  const rows = await table.rows(filter ? { filter } : {});
  await loadRows(c, rel, rows, emptySelect);
}

async function readTopic(log: LogClient, topic: string, metadata: boolean): Promise<Record<string, unknown>[]> {
  const admin = log.admin();
  try {
    const d = await admin.describeTopic(topic);
    const consumer = log.consumer({ autoOffsetReset: 'earliest' });
    try {
      const ends = new Map<number, bigint>();
      for (const p of d.partitions) {
        if (p.highWatermark > p.logStartOffset) ends.set(p.partition, p.highWatermark);
      }
      consumer.assign([...ends.keys()].map((partition) => ({ topic, partition })));
      for (const p of d.partitions)
        if (ends.has(p.partition)) consumer.seek({ topic, partition: p.partition }, p.logStartOffset);
      const rows: Record<string, unknown>[] = [];
      const done = (): boolean =>
        [...ends].every(([partition, end]) => (consumer.position({ topic, partition }) ?? 0n) >= end);
      while (!done()) {
        for (const r of await consumer.poll(200)) {
          if (r.offset >= (ends.get(r.partition) ?? 0n)) continue;
          const text = r.value?.toString('utf8') ?? null;
          let row: Record<string, unknown>;
          try {
            const v = text === null ? null : JSON.parse(text);
            row = v && typeof v === 'object' && !Array.isArray(v) ? v : { value: v };
          } catch {
            row = { value: text };
          }
          if (metadata)
            Object.assign(row, {
              _key: r.key?.toString('utf8') ?? null,
              _partition: r.partition,
              _offset: Number(r.offset),
              _timestamp: new Date(Number(r.timestamp)).toISOString(),
            });
          rows.push(row);
        }
      }
      return rows;
    } finally {
      await consumer.close();
    }
  } finally {
    await admin.close();
  }
}

/** Writes the relation `rel` to a target; returns the rows written. */
export async function writeTarget(
  c: DuckDBConnection,
  conn: Connectors,
  rel: string,
  target: Target,
  field: string,
): Promise<number> {
  switch (target.kind) {
    case 'file': {
      const file = path.resolve(conn.baseDir, target.path);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const fmt = fileFormat(file, target.format);
      const opt = fmt === 'csv' ? 'FORMAT csv, HEADER' : fmt === 'parquet' ? 'FORMAT parquet' : 'FORMAT json';
      return Number(await scalar(c, `COPY (SELECT * FROM ${rel}) TO ${lit(file)} (${opt})`));
    }
    case 'iceberg': {
      const catalog = need(conn.catalog, 'lake catalog', `${field}.table`);
      const id = parseIdentifier(target.table);
      const cols = await describe(c, rel);
      let table: Table;
      if (await catalog.tableExists(id)) table = await loadTable(catalog, id);
      else {
        if (!(await catalog.namespaceExists(id.namespace)))
          await catalog.createNamespace(id.namespace).catch(() => undefined);
        table = await createTable(catalog, id, {
          schema: {
            fields: cols.map((col, i) => ({
              id: i + 1,
              name: col.name,
              required: false,
              type: icebergTypeFromDuck(col.type),
            })),
          },
          ...(target.partitionBy ? { partition: target.partitionBy } : {}),
        });
      }
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-pipeline-out-'));
      try {
        const file = path.join(dir, 'rows.parquet');
        const n = Number(await scalar(c, `COPY (SELECT * FROM ${rel}) TO ${lit(file)} (FORMAT parquet)`));
        const input = { file, format: 'parquet' as const };
        if (target.mode === 'append') await table.append(input);
        else if (target.mode === 'overwrite')
          await table.overwrite(input, target.filter ? { filter: target.filter } : {});
        else {
          if (!target.key?.length)
            throw new TributaryError('INVALID_ARGUMENT', `${field}.key: merge needs key columns`, {
              field: `${field}.key`,
              retriable: false,
            });
          await table.upsert(input, { key: target.key });
        }
        return n;
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    case 'topic': {
      const log = need(conn.log, 'log client', `${field}.topic`);
      const admin = log.admin();
      try {
        if (!(await admin.listTopics()).includes(target.topic))
          await admin.createTopic(target.topic, { partitions: target.partitions }).catch(() => undefined);
      } finally {
        await admin.close();
      }
      const producer = log.producer();
      try {
        const rows = await queryRows(c, `SELECT * FROM ${rel}`);
        for (let i = 0; i < rows.length; i += 5000) {
          await producer.send(
            rows.slice(i, i + 5000).map((r) => ({
              topic: target.topic,
              key: target.key
                ? r[target.key] === null || r[target.key] === undefined
                  ? null
                  : String(r[target.key])
                : null,
              value: toJsonLine(r),
            })),
          );
        }
        await producer.flush();
        return rows.length;
      } finally {
        await producer.close();
      }
    }
    case 'datasource': {
      const olap = need(conn.olap, 'OLAP engine', `${field}.dataSource`);
      const rows = await queryRows(c, `SELECT * FROM ${rel}`);
      if (rows.length === 0) return 0;
      const cols: Column[] = await describe(c, rel);
      const dims = target.dimensions ?? cols.filter((x) => x.name !== target.timestampColumn).map((x) => x.name);
      await olap.ingest({
        type: 'index_parallel',
        spec: {
          dataSchema: {
            dataSource: target.dataSource,
            timestampSpec: { column: target.timestampColumn, format: 'auto' },
            dimensionsSpec: { dimensions: dims },
            ...(target.metrics ? { metricsSpec: target.metrics } : {}),
            granularitySpec: { rollup: false, queryGranularity: 'none', segmentGranularity: target.segmentGranularity },
          },
          ioConfig: {
            type: 'index_parallel',
            inputSource: { type: 'inline', data: rows.map(toJsonLine).join('\n') },
            inputFormat: { type: 'json' },
            appendToExisting: target.appendToExisting,
          },
        },
      });
      return rows.length;
    }
  }
}
