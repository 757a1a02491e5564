import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { TributaryError } from '../core/index.ts';
import { type ColumnInfo, sqlType } from './columns.ts';
import { SQL_HELPER_MACROS, SQL_MACROS } from './druidsql.ts';
import type { BuiltBatch } from './ingest.ts';
import { ident, lit, num } from './sql.ts';
import { formatInterval, type Interval } from './time.ts';

export interface SegmentInfo {
  id: string;
  interval: Interval;
  version: string;
  partition: number;
  rows: number;
  size: number;
  /** Relative to the datasource directory. */
  file: string;
}

export interface DatasourceMeta {
  name: string;
  columns: ColumnInfo[];
  segments: SegmentInfo[];
  rollup: boolean;
  queryGranularity: unknown;
  /** Bumped on every publish; result cache keys include it. */
  generation: number;
  maxIngestedEventTime?: number;
  /** Kafka offsets (next to read, per partition) committed with the segments listed here. */
  streamOffsets?: StreamOffsets;
}

export interface StreamOffsets {
  topic: string;
  partitions: Record<string, string>;
}

/** SQL for a datasource's table (schema `druid`, so datasource names never collide with anything else). */
/** The attached (compressed) in-memory database holding every engine object. */
const DB = 'olap';

/**
 * String dimensions of batch-ingested datasources are dictionary-encoded, as Druid's segment columns are: a
 * DuckDB ENUM whose values are the column's distinct strings in byte order (so ENUM order is string order and
 * comparisons, ORDER BY, min/max read like VARCHAR), rebuilt when a publish brings new values. Queries then group,
 * filter and count distinct values on small integer codes. Columns with more distinct values than this stay
 * VARCHAR, and so do datasources fed by a stream (every micro-batch may bring new values).
 */
export const MAX_DICTIONARY = 1_000_000;
const DICT_SCHEMA = 'olap_dict';
/** Druid SQL reads datasources with dictionary-encoded columns through views here that cast them to VARCHAR. */
export const SQL_SCHEMA = 'olap_sql';

export interface Dictionary {
  /** The ENUM type, as SQL. */
  type: string;
  /** Its name in schema olap_dict (a publish that re-encodes the column drops it in the same transaction). */
  name: string;
  /** Distinct values. */
  size: number;
  /** DuckDB's hash() of each value, by code (what theta/HLL sketches of the value hold). */
  hashes: BigUint64Array;
  /** The codes in increasing hash order. */
  byHash: Uint32Array;
}

export function tableSql(name: string): string {
  return `druid.${ident(name)}`;
}

const MACROS = [
  // Quantile sketch build: sort the values and, above 2k of them, keep one representative per block of
  // 2^j consecutive values (the block's middle) weighted by the block size, so at most 2k items remain.
  `CREATE OR REPLACE MACRO druid_qs_step(n, k) AS CASE WHEN n <= 2 * k THEN 1 ELSE (2 ** ceil(log2(n / (2 * k))))::BIGINT END`,
  // (s is evaluated once: a lambda with an index keeps each block's middle, a second one weights it.)
  `CREATE OR REPLACE MACRO druid_qs_compact(s, st, n) AS list_transform(list_filter(s, lambda x, i: (i - 1) % st = least(st // 2, n - ((i - 1) // st) * st - 1)), lambda x, j: {'v': x, 'w': least(st, n - (j - 1) * st)::BIGINT})`,
  `CREATE OR REPLACE MACRO druid_qs_build(l, k) AS druid_qs_compact(list_sort(l), druid_qs_step(len(l), k), len(l))`,
  // Quantile sketch merge: items (weighted, from many rows) above 2k are compacted into at most 2k blocks by
  // where each item's rank span starts (cell width N/2k); a block keeps its weighted median with the block's
  // weight. All items of a block but the last lie inside one cell, so the rank error added is at most N/2k.
  `CREATE OR REPLACE MACRO druid_qs_merge(s, k) AS CASE WHEN s IS NULL OR len(s) <= 2 * k THEN list_sort(s) ELSE (SELECT list({'v': rv, 'w': bw::BIGINT} ORDER BY b) FROM (SELECT b, sum(w) AS bw, min(v) FILTER (WHERE 2 * cb >= wb) AS rv FROM (SELECT v, w, b, sum(w) OVER (PARTITION BY b ORDER BY v, w ROWS UNBOUNDED PRECEDING) AS cb, sum(w) OVER (PARTITION BY b) AS wb FROM (SELECT v, w, floor((cw - w) * (2 * k) / n)::BIGINT AS b FROM (SELECT v, w, sum(w) OVER (ORDER BY v, w ROWS UNBOUNDED PRECEDING) AS cw, sum(w) OVER () AS n FROM (SELECT e.v AS v, e.w AS w FROM (SELECT unnest(s) AS e))))) GROUP BY b)) END`,
  // KMV estimate of a theta state (sorted distinct hashes, at most k): exact below k. Mirrors sketches.ts.
  `CREATE OR REPLACE MACRO druid_theta_est(s, k) AS CASE WHEN len(s) < k THEN len(s)::DOUBLE ELSE (k - 1) / (s[k]::DOUBLE / 18446744073709551616.0) END`,
  // HLL coupon: 26 address bits (top 12 = register) and a 6-bit rank from the low 52 bits.
  `CREATE OR REPLACE MACRO druid_hll(h) AS ((((h >> 38)::UINTEGER) << 6) | (CASE WHEN (h & 4503599627370495::UBIGINT) = 0 THEN 53 ELSE 52 - floor(log2((h & 4503599627370495::UBIGINT)::DOUBLE))::INTEGER END)::UINTEGER)`,
];

/** The DuckDB database holding every datasource's rows, plus segment files and metadata on disk. */
export class SegmentStore {
  readonly dataDir: string;
  readonly instance: DuckDBInstance;
  readonly datasources = new Map<string, DatasourceMeta>();
  /** Registered lookups (Druid's map lookups): name -> { version, map }, as tables lookup."name"(k, v). */
  readonly lookups = new Map<string, { version: string; map: Record<string, string> }>();
  /** Dictionary-encoded string columns: datasource -> column -> dictionary. */
  readonly dictionaries = new Map<string, Map<string, Dictionary>>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(dataDir: string, instance: DuckDBInstance) {
    this.dataDir = dataDir;
    this.instance = instance;
  }

  static async open(dataDir: string, options: { threads?: number } = {}): Promise<SegmentStore> {
    fs.mkdirSync(path.join(dataDir, 'olap'), { recursive: true });
    const config: Record<string, string> = {};
    if (options.threads) config.threads = String(options.threads);
    const instance = await DuckDBInstance.create(':memory:', config);
    const store = new SegmentStore(dataDir, instance);
    {
      // The default in-memory database stores columns uncompressed; an attached compressed one keeps
      // dictionary/FSST-encoded strings (after a checkpoint: see compress()) that grouping and filtering read much
      // faster. connect() USEs it.
      const c = await instance.connect();
      await c.run(`ATTACH ':memory:' AS ${DB} (COMPRESS)`);
      c.closeSync();
    }
    await store.withConn(async (c) => {
      await c.run("SET GLOBAL TimeZone = 'UTC'");
      await c.run('CREATE SCHEMA IF NOT EXISTS druid');
      await c.run('CREATE SCHEMA IF NOT EXISTS lookup');
      await c.run(`CREATE SCHEMA IF NOT EXISTS ${DICT_SCHEMA}`);
      // Which dictionary (ENUM type) each encoded column has, written in the transaction that changes it, so a
      // query can check within its snapshot that the codes it reads are those of the dictionary it planned with.
      await c.run(`CREATE TABLE IF NOT EXISTS ${DICT_SCHEMA}.current (ds VARCHAR, col VARCHAR, type_name VARCHAR)`);
      await c.run(`CREATE SCHEMA IF NOT EXISTS ${SQL_SCHEMA}`);
      const lookupsFile = path.join(dataDir, 'olap', 'lookups.json');
      if (fs.existsSync(lookupsFile)) {
        const saved = JSON.parse(fs.readFileSync(lookupsFile, 'utf8')) as Record<
          string,
          { version: string; map: Record<string, string> }
        >;
        for (const [name, l] of Object.entries(saved)) await store.loadLookup(c, name, l);
      }
      // Druid SQL's INFORMATION_SCHEMA, as views over DuckDB's catalog of the druid schema.
      await c.run('CREATE SCHEMA IF NOT EXISTS olap_info');
      await c.run(
        `CREATE OR REPLACE VIEW olap_info."SCHEMATA" AS SELECT 'druid' AS "CATALOG_NAME", unnest(['druid', 'INFORMATION_SCHEMA']) AS "SCHEMA_NAME", NULL::VARCHAR AS "SCHEMA_OWNER", NULL::VARCHAR AS "DEFAULT_CHARACTER_SET_CATALOG", NULL::VARCHAR AS "DEFAULT_CHARACTER_SET_SCHEMA", NULL::VARCHAR AS "DEFAULT_CHARACTER_SET_NAME", NULL::VARCHAR AS "SQL_PATH"`,
      );
      await c.run(
        `CREATE OR REPLACE VIEW olap_info."TABLES" AS SELECT 'druid' AS "TABLE_CATALOG", 'druid' AS "TABLE_SCHEMA", table_name AS "TABLE_NAME", 'TABLE' AS "TABLE_TYPE", 'NO' AS "IS_JOINABLE", 'NO' AS "IS_BROADCAST" FROM duckdb_tables() WHERE schema_name = 'druid' AND database_name = current_database()`,
      );
      await c.run(
        `CREATE OR REPLACE VIEW olap_info."COLUMNS" AS SELECT 'druid' AS "TABLE_CATALOG", 'druid' AS "TABLE_SCHEMA", table_name AS "TABLE_NAME", column_name AS "COLUMN_NAME", column_index::BIGINT AS "ORDINAL_POSITION", NULL::VARCHAR AS "COLUMN_DEFAULT", CASE WHEN column_name = '__time' THEN 'NO' ELSE 'YES' END AS "IS_NULLABLE", CASE WHEN data_type = 'TIMESTAMP' THEN 'TIMESTAMP' WHEN data_type = 'VARCHAR' OR data_type LIKE 'ENUM(%' THEN 'VARCHAR' WHEN data_type IN ('BIGINT', 'INTEGER') THEN 'BIGINT' WHEN data_type = 'DOUBLE' THEN 'DOUBLE' WHEN data_type = 'FLOAT' THEN 'FLOAT' WHEN data_type = 'VARCHAR[]' THEN 'VARCHAR' ELSE 'OTHER' END AS "DATA_TYPE", CASE WHEN data_type = 'TIMESTAMP' THEN 93 WHEN data_type IN ('VARCHAR', 'VARCHAR[]') OR data_type LIKE 'ENUM(%' THEN 12 WHEN data_type IN ('BIGINT', 'INTEGER') THEN -5 WHEN data_type = 'DOUBLE' THEN 8 WHEN data_type = 'FLOAT' THEN 6 ELSE 1111 END::BIGINT AS "JDBC_TYPE" FROM duckdb_columns() WHERE schema_name = 'druid' AND database_name = current_database()`,
      );
      for (const m of [...MACROS, ...SQL_MACROS, ...SQL_HELPER_MACROS]) await c.run(m);
      for (const dir of fs.readdirSync(path.join(dataDir, 'olap'))) {
        const metaFile = path.join(dataDir, 'olap', dir, 'datasource.json');
        if (!fs.existsSync(metaFile)) continue;
        const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as DatasourceMeta;
        await store.createTable(c, meta.name, meta.columns);
        const files = meta.segments.map((s) => path.join(store.dsDir(meta.name), s.file));
        if (files.length)
          await c.run(
            `INSERT INTO ${tableSql(meta.name)} BY NAME SELECT * FROM read_parquet([${files.map(lit).join(', ')}], union_by_name = true)`,
          );
        store.datasources.set(meta.name, meta);
        if (!meta.streamOffsets) await store.encodeStrings(c, meta.name, meta.columns);
      }
      await store.compress(c);
    });
    return store;
  }

  /** A connection whose default database is the engine's (every object the engine creates lives there). */
  async connect(): Promise<DuckDBConnection> {
    const c = await this.instance.connect();
    await c.run(`USE ${DB}`);
    return c;
  }

  async withConn<T>(fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
    const c = await this.connect();
    try {
      return await fn(c);
    } finally {
      c.closeSync();
    }
  }

  /**
   * Compresses what changed since the last call: an in-memory database compresses row groups only at a
   * checkpoint (it never checkpoints on its own), and dictionary/FSST-encoded strings are what make grouping
   * and filtering on dimensions fast (topN over 10M rows: about 10x). Best effort: skipped while another
   * transaction writes.
   */
  async compress(c: DuckDBConnection): Promise<void> {
    await c.run(`CHECKPOINT ${DB}`).catch(() => undefined);
  }

  /** Runs writers one at a time (metadata and tables change together). */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  dsDir(name: string): string {
    return path.join(this.dataDir, 'olap', Buffer.from(name, 'utf8').toString('hex'));
  }

  private async createTable(c: DuckDBConnection, name: string, columns: ColumnInfo[]): Promise<void> {
    const cols = [`"__time" TIMESTAMP`, ...columns.map((col) => `${ident(col.name)} ${sqlType(col)}`)];
    await c.run(`CREATE TABLE IF NOT EXISTS ${tableSql(name)} (${cols.join(', ')})`);
  }

  /**
   * Publishes the batch in temp table `olap_rolled` on `c`: writes one Parquet file per segment partition,
   * then swaps rows and metadata. Without append, segments of the same interval are replaced (overshadowed).
   */
  async publish(
    c: DuckDBConnection,
    dataSource: string,
    batch: BuiltBatch,
    options: {
      append: boolean;
      maxRowsPerSegment: number;
      rollup: boolean;
      queryGranularity: unknown;
      /** false when the rows are already in the table (streaming persists). Default true. */
      insert?: boolean;
      /** Stream offsets committed with these segments (one metadata write: exactly once). */
      streamOffsets?: StreamOffsets;
    },
  ): Promise<SegmentInfo[]> {
    const dir = this.dsDir(dataSource);
    fs.mkdirSync(path.join(dir, 'segments'), { recursive: true });
    const prev = this.datasources.get(dataSource);
    const columns = mergeColumns(prev?.columns ?? [], batch.columns);
    const version = new Date().toISOString();
    const order = [
      '"__time"',
      ...batch.columns.filter((x) => x.kind === 'string' || x.kind === 'long').map((x) => ident(x.name)),
    ].join(', ');
    const segments: SegmentInfo[] = [];
    // One partitioned COPY writes every single-partition bucket in one pass over the batch.
    const single = batch.buckets.filter((b) => b.rows <= options.maxRowsPerSegment);
    const singleFiles = new Map<number, string>();
    if (single.length > 1) {
      const stagingDir = path.join(dir, 'segments', `staging-${randomUUID()}`);
      const keys = single.map((b) => num(b.seg)).join(', ');
      await c.run(
        `COPY (SELECT * FROM olap_rolled WHERE __olap_seg IN (${keys}) ORDER BY ${order}) TO ${lit(stagingDir)} (FORMAT parquet, PARTITION_BY (__olap_seg), WRITE_PARTITION_COLUMNS false)`,
      );
      for (const b of single) {
        const sub = path.join(stagingDir, `__olap_seg=${b.seg}`);
        const parts = fs.readdirSync(sub);
        if (parts.length !== 1) continue; // fall back to the per-bucket path below
        const file = path.join('segments', `${randomUUID()}.parquet`);
        fs.renameSync(path.join(sub, parts[0]!), path.join(dir, file));
        singleFiles.set(b.seg, file);
      }
      fs.rmSync(stagingDir, { recursive: true, force: true });
    }
    for (const b of batch.buckets) {
      const parts = Math.max(1, Math.ceil(b.rows / options.maxRowsPerSegment));
      const basePartition = options.append
        ? Math.max(-1, ...(prev?.segments ?? []).filter((s) => s.interval.start === b.start).map((s) => s.partition)) +
          1
        : 0;
      for (let p = 0; p < parts; p++) {
        const partition = basePartition + p;
        const intervalText = formatInterval({ start: b.start, end: b.end });
        const id = `${dataSource}_${intervalText.replace('/', '_')}_${version}${partition ? `_${partition}` : ''}`;
        const prewritten = parts === 1 ? singleFiles.get(b.seg) : undefined;
        const file = prewritten ?? path.join('segments', `${randomUUID()}.parquet`);
        const abs = path.join(dir, file);
        if (!prewritten)
          await c.run(
            `COPY (SELECT * EXCLUDE (__olap_seg) FROM olap_rolled WHERE __olap_seg = ${num(b.seg)} ORDER BY ${order} LIMIT ${num(options.maxRowsPerSegment)} OFFSET ${num(p * options.maxRowsPerSegment)}) TO ${lit(abs)} (FORMAT parquet)`,
          );
        const rows = Math.min(options.maxRowsPerSegment, b.rows - p * options.maxRowsPerSegment);
        segments.push({
          id,
          interval: { start: b.start, end: b.end },
          version,
          partition,
          rows,
          size: fs.statSync(abs).size,
          file,
        });
      }
    }
    const replaced = options.append
      ? []
      : (prev?.segments ?? []).filter((s) =>
          batch.buckets.some((b) => b.start < s.interval.end && s.interval.start < b.end),
        );
    const kept = (prev?.segments ?? []).filter((s) => !replaced.includes(s));
    await c.run('BEGIN TRANSACTION');
    try {
      await this.ensureColumns(c, dataSource, prev?.columns, columns);
      if (options.insert !== false && !options.streamOffsets && !prev?.streamOffsets)
        await this.encodeStrings(c, dataSource, columns, 'olap_rolled');
      for (const s of replaced) {
        await c.run(
          `DELETE FROM ${tableSql(dataSource)} WHERE "__time" >= make_timestamp(${num(s.interval.start)} * 1000) AND "__time" < make_timestamp(${num(Math.min(s.interval.end, 8.64e15))} * 1000)`,
        );
      }
      if (options.insert !== false)
        await c.run(`INSERT INTO ${tableSql(dataSource)} BY NAME SELECT * EXCLUDE (__olap_seg) FROM olap_rolled`);
      const maxT = (await c.runAndReadAll(`SELECT epoch_ms(max("__time")) AS m FROM olap_rolled`)).getRowObjectsJS()[0]
        ?.m;
      const meta: DatasourceMeta = {
        name: dataSource,
        columns,
        segments: [...kept, ...segments].sort(
          (a, b) => a.interval.start - b.interval.start || a.partition - b.partition,
        ),
        rollup: options.rollup,
        queryGranularity: options.queryGranularity,
        generation: (prev?.generation ?? 0) + 1,
        ...(options.streamOffsets || prev?.streamOffsets
          ? { streamOffsets: options.streamOffsets ?? prev?.streamOffsets }
          : {}),
        maxIngestedEventTime: Math.max(
          prev?.maxIngestedEventTime ?? -8.64e15,
          maxT === null || maxT === undefined ? -8.64e15 : Number(maxT),
        ),
      };
      // The metadata file is the commit point: segments not listed in it are ignored on restart.
      const metaFile = path.join(dir, 'datasource.json');
      fs.writeFileSync(`${metaFile}.tmp`, JSON.stringify(meta, null, 1));
      fs.renameSync(`${metaFile}.tmp`, metaFile);
      await c.run('COMMIT');
      this.datasources.set(dataSource, meta);
      await this.compress(c);
    } catch (err) {
      await c.run('ROLLBACK').catch(() => undefined);
      await this.loadDictionaries(c, dataSource).catch(() => undefined);
      throw err instanceof TributaryError
        ? err
        : new TributaryError('INTERNAL', `publishing segments failed: ${(err as Error).message}`, { cause: err });
    }
    for (const s of replaced) fs.rmSync(path.join(dir, s.file), { force: true });
    return segments;
  }

  private async loadLookup(
    c: DuckDBConnection,
    name: string,
    l: { version: string; map: Record<string, string> },
  ): Promise<void> {
    const t = `lookup.${ident(name)}`;
    await c.run(`CREATE OR REPLACE TABLE ${t} (k VARCHAR PRIMARY KEY, v VARCHAR)`);
    const app = await c.createAppender(name, 'lookup');
    for (const [k, v] of Object.entries(l.map)) {
      app.appendVarchar(k);
      app.appendVarchar(String(v));
      app.endRow();
    }
    app.flushSync();
    app.closeSync();
    this.lookups.set(name, l);
  }

  /** Registers (or replaces) a map lookup and persists the set of lookups. */
  async setLookup(name: string, l: { version: string; map: Record<string, string> }): Promise<void> {
    await this.serialize(() =>
      this.withConn(async (c) => {
        await this.loadLookup(c, name, l);
        this.saveLookups();
      }),
    );
  }

  async deleteLookup(name: string): Promise<boolean> {
    if (!this.lookups.has(name)) return false;
    await this.serialize(() =>
      this.withConn(async (c) => {
        await c.run(`DROP TABLE IF EXISTS lookup.${ident(name)}`);
        this.lookups.delete(name);
        this.saveLookups();
      }),
    );
    return true;
  }

  private saveLookups(): void {
    const f = path.join(this.dataDir, 'olap', 'lookups.json');
    fs.writeFileSync(`${f}.tmp`, JSON.stringify(Object.fromEntries(this.lookups)));
    fs.renameSync(`${f}.tmp`, f);
  }

  /** Creates the table or adds/widens columns so rows with `columns` fit. */
  async ensureColumns(
    c: DuckDBConnection,
    dataSource: string,
    prev: ColumnInfo[] | undefined,
    columns: ColumnInfo[],
  ): Promise<void> {
    await this.createTable(c, dataSource, columns);
    for (const col of columns) {
      const old = prev?.find((x) => x.name === col.name);
      if (!old && prev)
        await c.run(`ALTER TABLE ${tableSql(dataSource)} ADD COLUMN IF NOT EXISTS ${ident(col.name)} ${sqlType(col)}`);
      else if (old && old.kind === 'string' && col.kind === 'mv') {
        await c.run(
          `ALTER TABLE ${tableSql(dataSource)} ALTER ${ident(col.name)} TYPE VARCHAR[] USING CASE WHEN ${ident(col.name)} IS NULL THEN NULL ELSE [CAST(${ident(col.name)} AS VARCHAR)] END`,
        );
        await this.forgetDictionary(c, dataSource, col.name);
      }
    }
    if (this.dictionaries.get(dataSource)?.size || prev) await this.refreshSqlView(c, dataSource);
  }

  /** The dictionary of a string column, when it is dictionary-encoded. */
  dictionary(dataSource: string, column: string): Dictionary | undefined {
    return this.dictionaries.get(dataSource)?.get(column);
  }

  /**
   * Dictionary-encodes the string columns of a datasource (see MAX_DICTIONARY) so that they hold the values the
   * table has plus those of relation `from` (rows about to be inserted): a column whose dictionary lacks some of
   * them gets a new dictionary with all of them (the column is rewritten), one past the limit goes back to VARCHAR.
   */
  async encodeStrings(c: DuckDBConnection, dataSource: string, columns: ColumnInfo[], from?: string): Promise<void> {
    const types = await this.columnTypes(c, dataSource);
    const fromCols = from ? await relationColumns(c, from) : new Set<string>();
    for (const col of columns) {
      if (col.kind !== 'string') continue;
      const type = types.get(col.name);
      if (type === undefined) continue;
      const cid = ident(col.name);
      const dict = this.dictionary(dataSource, col.name);
      const isEnum = type.startsWith('ENUM') && dict !== undefined;
      if (!isEnum && type !== 'VARCHAR') continue;
      const added =
        from && fromCols.has(col.name)
          ? `SELECT DISTINCT CAST(${cid} AS VARCHAR) AS v FROM ${from} WHERE ${cid} IS NOT NULL`
          : undefined;
      if (isEnum) {
        if (!added) continue;
        const missing = (
          await c.runAndReadAll(`SELECT count(*) AS n FROM (${added}) WHERE TRY_CAST(v AS ${dict.type}) IS NULL`)
        ).getRowObjectsJS()[0]!.n;
        if (Number(missing) === 0) continue;
      }
      const have = isEnum
        ? `SELECT unnest(enum_range(NULL::${dict.type})) AS v`
        : `SELECT DISTINCT CAST(${cid} AS VARCHAR) AS v FROM ${tableSql(dataSource)} WHERE ${cid} IS NOT NULL`;
      await c.run(
        `CREATE OR REPLACE TEMP TABLE olap_dict_values AS SELECT DISTINCT v FROM (${have}${added ? ` UNION ALL ${added}` : ''})`,
      );
      const size = Number(
        (await c.runAndReadAll('SELECT count(*) AS n FROM olap_dict_values')).getRowObjectsJS()[0]!.n,
      );
      if (size > MAX_DICTIONARY) {
        if (isEnum) {
          await c.run(`ALTER TABLE ${tableSql(dataSource)} ALTER ${cid} TYPE VARCHAR USING CAST(${cid} AS VARCHAR)`);
          await this.forgetDictionary(c, dataSource, col.name);
        }
      } else if (size > 0) {
        const typeName = `${JSON.stringify([dataSource, col.name])}#${randomUUID()}`;
        const name = `${DICT_SCHEMA}.${ident(typeName)}`;
        await c.run(`CREATE TYPE ${name} AS ENUM (SELECT v FROM olap_dict_values ORDER BY v)`);
        const { hashes, byHash } = await dictionaryHashes(c, 'SELECT v FROM olap_dict_values');
        await c.run(
          `ALTER TABLE ${tableSql(dataSource)} ALTER ${cid} TYPE ${name} USING CAST(CAST(${cid} AS VARCHAR) AS ${name})`,
        );
        await this.forgetDictionary(c, dataSource, col.name);
        if (!this.dictionaries.has(dataSource)) this.dictionaries.set(dataSource, new Map());
        this.dictionaries.get(dataSource)!.set(col.name, { type: name, name: typeName, size, hashes, byHash });
        await c.run(`INSERT INTO ${DICT_SCHEMA}.current VALUES ($1, $2, $3)`, [dataSource, col.name, typeName]);
      }
      await c.run('DROP TABLE olap_dict_values');
    }
    await this.refreshSqlView(c, dataSource);
  }

  /**
   * Druid SQL's relation for a datasource: its table, or while some columns are dictionary-encoded a view that
   * casts those to VARCHAR (SQL then sees strings throughout, and the DuckDB client, which converts ENUM columns
   * very slowly, never gets an ENUM). Recreated whenever the table's columns change (a view pins their types).
   */
  sqlRelation(dataSource: string): { schema: string; table: string } {
    return { schema: this.dictionaries.get(dataSource)?.size ? SQL_SCHEMA : 'druid', table: dataSource };
  }

  private async refreshSqlView(c: DuckDBConnection, dataSource: string): Promise<void> {
    const dicts = this.dictionaries.get(dataSource);
    const view = `${SQL_SCHEMA}.${ident(dataSource)}`;
    if (!dicts?.size) {
      await c.run(`DROP VIEW IF EXISTS ${view}`);
      return;
    }
    const casts = [...dicts.keys()].map((n) => `CAST(${ident(n)} AS VARCHAR) AS ${ident(n)}`);
    await c.run(
      `CREATE OR REPLACE VIEW ${view} AS SELECT * REPLACE (${casts.join(', ')}) FROM ${tableSql(dataSource)}`,
    );
  }

  /** Turns every dictionary-encoded column of a datasource back into VARCHAR (before streaming rows arrive). */
  async plainStrings(c: DuckDBConnection, dataSource: string): Promise<void> {
    for (const name of [...(this.dictionaries.get(dataSource)?.keys() ?? [])]) {
      await c.run(
        `ALTER TABLE ${tableSql(dataSource)} ALTER ${ident(name)} TYPE VARCHAR USING CAST(${ident(name)} AS VARCHAR)`,
      );
      await this.forgetDictionary(c, dataSource, name);
    }
    await this.refreshSqlView(c, dataSource);
  }

  /** Rebuilds a datasource's `dictionaries` from olap_dict.current (after a rolled-back publish). */
  private async loadDictionaries(c: DuckDBConnection, dataSource: string): Promise<void> {
    this.dictionaries.delete(dataSource);
    const r = await c.runAndReadAll(`SELECT col, type_name FROM ${DICT_SCHEMA}.current WHERE ds = $1`, [dataSource]);
    for (const { col, type_name } of r.getRowObjectsJS()) {
      const name = String(type_name);
      const type = `${DICT_SCHEMA}.${ident(name)}`;
      const { hashes, byHash } = await dictionaryHashes(c, `SELECT unnest(enum_range(NULL::${type})) AS v`);
      if (!this.dictionaries.has(dataSource)) this.dictionaries.set(dataSource, new Map());
      this.dictionaries.get(dataSource)!.set(String(col), { type, name, size: hashes.length, hashes, byHash });
    }
  }

  private async forgetDictionary(c: DuckDBConnection, dataSource: string, column: string): Promise<void> {
    const d = this.dictionary(dataSource, column);
    if (!d) return;
    this.dictionaries.get(dataSource)!.delete(column);
    await c.run(`DELETE FROM ${DICT_SCHEMA}.current WHERE type_name = $1`, [d.name]);
    await c.run(`DROP TYPE IF EXISTS ${d.type}`).catch(() => undefined);
  }

  private async columnTypes(c: DuckDBConnection, dataSource: string): Promise<Map<string, string>> {
    const r = await c.runAndReadAll(
      `SELECT column_name, CASE WHEN data_type LIKE 'ENUM%' THEN 'ENUM' ELSE data_type END AS t FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'druid' AND table_name = $1`,
      [dataSource],
    );
    return new Map(r.getRowObjectsJS().map((x) => [String(x.column_name), String(x.t)]));
  }

  /** Merges new columns into a datasource's in-memory metadata (streaming rows before their first persist). */
  noteColumns(
    dataSource: string,
    columns: ColumnInfo[],
    rollup: boolean,
    queryGranularity: unknown,
    maxTime: number,
  ): DatasourceMeta {
    const prev = this.datasources.get(dataSource);
    const meta: DatasourceMeta = {
      name: dataSource,
      columns: mergeColumns(prev?.columns ?? [], columns),
      segments: prev?.segments ?? [],
      rollup,
      queryGranularity,
      generation: (prev?.generation ?? 0) + 1,
      maxIngestedEventTime: Math.max(prev?.maxIngestedEventTime ?? -8.64e15, maxTime),
      ...(prev?.streamOffsets ? { streamOffsets: prev.streamOffsets } : {}),
    };
    this.datasources.set(dataSource, meta);
    return meta;
  }

  async dropDatasource(name: string): Promise<void> {
    await this.serialize(() =>
      this.withConn(async (c) => {
        await c.run(`DROP TABLE IF EXISTS ${tableSql(name)}`);
        for (const col of [...(this.dictionaries.get(name)?.keys() ?? [])]) await this.forgetDictionary(c, name, col);
        this.dictionaries.delete(name);
        await c.run(`DROP VIEW IF EXISTS ${SQL_SCHEMA}.${ident(name)}`);
        fs.rmSync(this.dsDir(name), { recursive: true, force: true });
        this.datasources.delete(name);
      }),
    );
  }
}

/**
 * For the distinct VARCHAR values `v` of a query, coded in byte order (an ENUM's code order): hash() of each
 * value by code, and the codes in increasing hash order.
 */
async function dictionaryHashes(
  c: DuckDBConnection,
  values: string,
): Promise<{ hashes: BigUint64Array; byHash: Uint32Array }> {
  const r = await c.runAndReadAll(
    `SELECT (row_number() OVER (ORDER BY v) - 1)::UINTEGER AS code, hash(v) AS h FROM (${values}) ORDER BY h, code`,
  );
  const [codes, hs] = r.getColumnsJS() as [number[], bigint[]];
  const hashes = new BigUint64Array(codes?.length ?? 0);
  const byHash = Uint32Array.from(codes ?? []);
  for (let i = 0; i < byHash.length; i++) hashes[byHash[i]!] = hs[i]!;
  return { hashes, byHash };
}

/** Column names of a relation (a table name or a parenthesized query). */
async function relationColumns(c: DuckDBConnection, from: string): Promise<Set<string>> {
  const r = await c.runAndReadAll(`DESCRIBE SELECT * FROM ${from}`);
  return new Set(r.getRowObjectsJS().map((x) => String(x.column_name)));
}

function mergeColumns(prev: ColumnInfo[], next: ColumnInfo[]): ColumnInfo[] {
  const out = prev.map((c) => ({ ...c }));
  for (const c of next) {
    const i = out.findIndex((x) => x.name === c.name);
    if (i < 0) out.push(c);
    else if (out[i]!.kind === 'string' && c.kind === 'mv') out[i] = { ...out[i]!, kind: 'mv' };
  }
  return out;
}
