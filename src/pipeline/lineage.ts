import * as fs from 'node:fs';
import * as path from 'node:path';
import { TributaryError } from '../core/index.ts';
import type { Column } from './duck.ts';
import type { CheckResult, ColumnMetrics } from './quality.ts';
import type { FieldRef } from './rules.ts';

export const PRODUCER = 'https://github.com/tributary/tributary/tree/main/src/pipeline';
const OL = 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent';
const FACET = (name: string, version: string): string => `https://openlineage.io/spec/facets/${version}/${name}.json`;

/** Dataset ids are `kind:name` (iceberg:db.orders, topic:orders, datasource:sales, file:/abs/path). */
export function datasetNamespace(id: string): { namespace: string; name: string } {
  const i = id.indexOf(':');
  const kind = id.slice(0, i);
  const name = id.slice(i + 1);
  const ns: Record<string, string> = {
    iceberg: 'iceberg://tributary',
    topic: 'kafka://tributary',
    datasource: 'druid://tributary',
    file: 'file://',
    sql: 'duckdb://tributary',
  };
  return { namespace: ns[kind] ?? `tributary://${kind}`, name };
}
export function datasetIdOf(namespace: string, name: string): string {
  const kinds: Record<string, string> = {
    'iceberg://tributary': 'iceberg',
    'kafka://tributary': 'topic',
    'druid://tributary': 'datasource',
    'file://': 'file',
    'duckdb://tributary': 'sql',
  };
  return `${kinds[namespace] ?? namespace.replace(/^tributary:\/\//, '')}:${name}`;
}

export interface DatasetInfo {
  id: string;
  columns: Column[];
  /** Output datasets: column -> source fields. */
  columnLineage?: Map<string, FieldRef[]>;
  rowCount?: number;
  quality?: { results: CheckResult[]; columnMetrics: Record<string, ColumnMetrics>; rowCount: number };
}

export interface RunEventInput {
  eventType: 'START' | 'COMPLETE' | 'FAIL' | 'RUNNING' | 'ABORT';
  runId: string;
  job: string;
  jobNamespace?: string;
  inputs: DatasetInfo[];
  outputs: DatasetInfo[];
  error?: Error;
  eventTime?: Date;
  nominalTime?: string;
  processingType?: 'BATCH' | 'STREAMING';
}

function base(name: string, version: string): { _producer: string; _schemaURL: string } {
  return { _producer: PRODUCER, _schemaURL: `${FACET(name, version)}#/$defs/${name}` };
}

function schemaFacet(cols: Column[]): Record<string, unknown> {
  return {
    ...base('SchemaDatasetFacet', '1-2-0'),
    fields: cols.map((c, i) => ({ name: c.name, type: c.type, ordinal_position: i + 1 })),
  };
}

function metricsOf(q: NonNullable<DatasetInfo['quality']>): Record<string, unknown> {
  const columnMetrics: Record<string, Record<string, number>> = {};
  for (const [col, m] of Object.entries(q.columnMetrics)) {
    const o: Record<string, number> = { nullCount: m.nullCount, count: m.count };
    if (m.distinctCount !== undefined) o.distinctCount = m.distinctCount;
    if (m.min !== undefined && Number.isFinite(m.min)) o.min = m.min;
    if (m.max !== undefined && Number.isFinite(m.max)) o.max = m.max;
    columnMetrics[col] = o;
  }
  return { rowCount: q.rowCount, columnMetrics };
}

function assertionsOf(results: CheckResult[]): Record<string, unknown>[] {
  return results.map((r) => {
    const a: Record<string, unknown> = {
      assertion: r.type,
      success: r.success,
      severity: r.severity,
      name: r.name,
      expected: r.expected,
      actual: String(typeof r.observedValue === 'object' ? JSON.stringify(r.observedValue) : r.observedValue),
    };
    if (r.column) a.column = r.column;
    if (r.predicate) {
      a.content = r.predicate;
      a.contentType = 'sql';
    }
    return a;
  });
}

function datasourceFacet(id: string): Record<string, unknown> {
  const { namespace } = datasetNamespace(id);
  return { ...base('DatasourceDatasetFacet', '1-0-1'), name: namespace, uri: namespace };
}

/** An OpenLineage RunEvent with schema, dataSource, columnLineage, quality, outputStatistics and errorMessage facets. */
export function runEvent(e: RunEventInput): Record<string, unknown> {
  const inputs = e.inputs.map((d) => {
    const facets: Record<string, unknown> = { dataSource: datasourceFacet(d.id) };
    if (d.columns.length) facets.schema = schemaFacet(d.columns);
    const out: Record<string, unknown> = { ...datasetNamespace(d.id), facets };
    if (d.quality) {
      out.inputFacets = {
        dataQualityMetrics: { ...base('DataQualityMetricsInputDatasetFacet', '1-0-3'), ...metricsOf(d.quality) },
        dataQualityAssertions: {
          ...base('DataQualityAssertionsDatasetFacet', '1-1-0'),
          assertions: assertionsOf(d.quality.results),
        },
      };
    }
    return out;
  });
  const outputs = e.outputs.map((d) => {
    const facets: Record<string, unknown> = { dataSource: datasourceFacet(d.id) };
    if (d.columns.length) facets.schema = schemaFacet(d.columns);
    if (d.columnLineage?.size) {
      const fields: Record<string, unknown> = {};
      for (const [col, refs] of d.columnLineage) {
        if (!refs.length) continue;
        fields[col] = {
          inputFields: refs.map((r) => ({
            ...datasetNamespace(r.dataset),
            field: r.field,
            transformations: [{ type: r.type, subtype: r.subtype, masking: r.masking ?? false }],
          })),
        };
      }
      facets.columnLineage = { ...base('ColumnLineageDatasetFacet', '1-2-0'), fields };
    }
    if (d.quality) {
      facets.dataQualityMetrics = { ...base('DataQualityMetricsDatasetFacet', '1-0-0'), ...metricsOf(d.quality) };
      facets.dataQualityAssertions = {
        ...base('DataQualityAssertionsDatasetFacet', '1-1-0'),
        assertions: assertionsOf(d.quality.results),
      };
    }
    const out: Record<string, unknown> = { ...datasetNamespace(d.id), facets };
    if (d.rowCount !== undefined)
      out.outputFacets = {
        outputStatistics: { ...base('OutputStatisticsOutputDatasetFacet', '1-0-2'), rowCount: d.rowCount },
      };
    return out;
  });
  const runFacets: Record<string, unknown> = {};
  if (e.error)
    runFacets.errorMessage = {
      ...base('ErrorMessageRunFacet', '1-0-1'),
      message: e.error.message,
      programmingLanguage: 'TypeScript',
      ...(e.error.stack ? { stackTrace: e.error.stack } : {}),
    };
  if (e.nominalTime)
    runFacets.nominalTime = { ...base('NominalTimeRunFacet', '1-0-1'), nominalStartTime: e.nominalTime };
  return {
    eventType: e.eventType,
    eventTime: (e.eventTime ?? new Date()).toISOString(),
    run: { runId: e.runId, facets: runFacets },
    job: {
      namespace: e.jobNamespace ?? 'tributary',
      name: e.job,
      facets: {
        jobType: {
          ...base('JobTypeJobFacet', '2-0-4'),
          processingType: e.processingType ?? 'BATCH',
          integration: 'TRIBUTARY',
          jobType: e.processingType === 'STREAMING' ? 'STREAMING_JOB' : 'PIPELINE',
        },
      },
    },
    inputs,
    outputs,
    producer: PRODUCER,
    schemaURL: OL,
  };
}

/** Where lineage events go. */
export interface LineageSink {
  emit(event: Record<string, unknown>): Promise<void>;
}

/** Appends events as NDJSON lines. */
export class NdjsonLineageSink implements LineageSink {
  readonly file: string;
  constructor(file: string) {
    this.file = file;
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  }
  async emit(event: Record<string, unknown>): Promise<void> {
    fs.appendFileSync(this.file, `${JSON.stringify(event)}\n`);
  }
}

/** POSTs events to an OpenLineage HTTP endpoint (Marquez: `http://host:5000`, path `/api/v1/lineage`). */
export class HttpLineageSink implements LineageSink {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly timeoutMs: number;
  constructor(baseUrl: string, opts: { path?: string; apiKey?: string; timeoutMs?: number } = {}) {
    this.url = new URL(opts.path ?? '/api/v1/lineage', baseUrl).toString();
    this.headers = { 'content-type': 'application/json' };
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }
  async emit(event: Record<string, unknown>): Promise<void> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: this.headers,
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok)
      throw new TributaryError(
        'UNAVAILABLE',
        `lineage endpoint ${this.url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`,
      );
  }
}

interface Edge {
  job: string;
  from: string;
  to: string;
}

/** An in-process lineage graph built from run events: upstream/downstream of a dataset or a column. */
export class LineageGraph implements LineageSink {
  private readonly edges = new Map<string, Edge>();
  /** "ds#col" -> upstream "ds#col" -> whether the value flows directly (not only via joins/filters). */
  private readonly columnEdges = new Map<string, Map<string, boolean>>();

  async emit(event: Record<string, unknown>): Promise<void> {
    this.add(event);
  }

  add(event: Record<string, unknown>): void {
    if (event.eventType !== 'COMPLETE' && event.eventType !== 'START') return;
    const job = (event.job as { name: string }).name;
    const ins = (event.inputs as { namespace: string; name: string }[]) ?? [];
    const outs = (event.outputs as { namespace: string; name: string; facets?: Record<string, unknown> }[]) ?? [];
    for (const o of outs) {
      const to = datasetIdOf(o.namespace, o.name);
      for (const i of ins) {
        const from = datasetIdOf(i.namespace, i.name);
        this.edges.set(`${from}>${to}>${job}`, { job, from, to });
      }
      const cl = o.facets?.columnLineage as
        | {
            fields?: Record<
              string,
              {
                inputFields: { namespace: string; name: string; field: string; transformations?: { type: string }[] }[];
              }
            >;
          }
        | undefined;
      for (const [col, f] of Object.entries(cl?.fields ?? {})) {
        const key = `${to}#${col}`;
        const set = this.columnEdges.get(key) ?? new Map<string, boolean>();
        for (const inf of f.inputFields) {
          const from = datasetIdOf(inf.namespace, inf.name);
          const k = `${from}#${inf.field}`;
          const direct = !inf.transformations || inf.transformations.some((t) => t.type === 'DIRECT');
          set.set(k, (set.get(k) ?? false) || direct);
          this.edges.set(`${from}>${to}>${job}`, { job, from, to });
        }
        this.columnEdges.set(key, set);
      }
    }
  }

  datasets(): string[] {
    const s = new Set<string>();
    for (const e of this.edges.values()) {
      s.add(e.from);
      s.add(e.to);
    }
    return [...s].sort();
  }

  /** Datasets (transitively) upstream or downstream of one, with the jobs on the way. */
  walk(dataset: string, direction: 'upstream' | 'downstream'): { dataset: string; depth: number; via: string[] }[] {
    const seen = new Map<string, { depth: number; via: Set<string> }>();
    let frontier = [dataset];
    for (let depth = 1; frontier.length; depth++) {
      const next: string[] = [];
      for (const d of frontier)
        for (const e of this.edges.values()) {
          const [here, there] = direction === 'upstream' ? [e.to, e.from] : [e.from, e.to];
          if (here !== d || there === dataset) continue;
          const s = seen.get(there);
          if (s) s.via.add(e.job);
          else {
            seen.set(there, { depth, via: new Set([e.job]) });
            next.push(there);
          }
        }
      frontier = next;
    }
    return [...seen].map(([d, v]) => ({ dataset: d, depth: v.depth, via: [...v.via] }));
  }

  /**
   * Columns (transitively) a column derives its values from, or columns derived from it. Only direct
   * flows by default; `includeIndirect` adds columns that influence it through joins, filters, grouping.
   */
  columns(
    dataset: string,
    column: string,
    direction: 'upstream' | 'downstream',
    opts: { includeIndirect?: boolean } = {},
  ): string[] {
    const start = `${dataset}#${column}`;
    const adj = new Map<string, Set<string>>();
    for (const [to, froms] of this.columnEdges)
      for (const [f, direct] of froms) {
        if (!direct && !opts.includeIndirect) continue;
        const [a, b] = direction === 'upstream' ? [to, f] : [f, to];
        const s = adj.get(a) ?? new Set();
        s.add(b);
        adj.set(a, s);
      }
    const seen = new Set<string>();
    const stack = [start];
    while (stack.length) {
      const x = stack.pop()!;
      for (const y of adj.get(x) ?? [])
        if (!seen.has(y) && y !== start) {
          seen.add(y);
          stack.push(y);
        }
    }
    return [...seen].sort();
  }
}
