import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { dataLayout, invalidArgument, TributaryError } from '../core/index.ts';
import type { Log, LogClient } from '../log/index.ts';
import type { OlapEngine } from '../olap/index.ts';
import {
  HttpLineageSink,
  type LineageSink,
  NdjsonLineageSink,
  nextCronTime,
  PipelineRunner,
  type PipelineSpec,
  parsePipelineYaml,
  type RunResult,
  Scheduler,
} from '../pipeline/index.ts';

interface Common {
  dataDir: string;
}

/** Output goes through commander's configured writer, so tests can capture it. */
let writer: (s: string) => void = (s) => process.stdout.write(s);
function out(line: string): void {
  writer(`${line}\n`);
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function parseParams(list: string[] | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  for (const kv of list ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw invalidArgument('--param', 'key=value', kv);
    params[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return params;
}

function readSpec(file: string): { spec: PipelineSpec; baseDir: string } {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new TributaryError('NOT_FOUND', `${file}: no such pipeline file`);
  const text = fs.readFileSync(abs, 'utf8');
  const spec = parsePipelineYaml(text); // YAML is a superset of JSON
  return { spec, baseDir: path.dirname(abs) };
}

function kinds(spec: PipelineSpec): Set<string> {
  const s = new Set<string>();
  for (const st of spec.stages) {
    if (st.type === 'ingest') s.add(st.source.kind);
    if (st.type === 'output') s.add(st.target.kind);
  }
  return s;
}

/** Opens the runner with the parts the pipeline needs (log for topics, OLAP for datasources). */
async function withRunner<T>(
  opts: Common & { lineageFile?: string; lineageUrl?: string },
  spec: PipelineSpec | undefined,
  fn: (r: PipelineRunner) => Promise<T>,
): Promise<T> {
  const layout = dataLayout(opts.dataDir);
  const k = spec ? kinds(spec) : new Set<string>();
  let log: Log | undefined;
  let client: LogClient | undefined;
  let olap: OlapEngine | undefined;
  // the log and the OLAP engine load only for pipelines that use topics or datasources
  if (k.has('topic')) {
    const { embeddedClient, openLog } = await import('../log/index.ts');
    log = await openLog({ dataDir: layout.log, cleanerIntervalMs: 0 });
    client = embeddedClient(log);
  }
  if (k.has('datasource')) {
    const { OlapEngine } = await import('../olap/index.ts');
    olap = await OlapEngine.open({ dataDir: layout.olap });
  }
  const lineage: LineageSink[] = [];
  if (opts.lineageFile) lineage.push(new NdjsonLineageSink(opts.lineageFile));
  if (opts.lineageUrl) lineage.push(new HttpLineageSink(opts.lineageUrl));
  const runner = new PipelineRunner({
    dataDir: layout.root,
    ...(client ? { log: client } : {}),
    ...(olap ? { olap } : {}),
    lineage,
  });
  try {
    return await fn(runner);
  } finally {
    await runner.close();
    await client?.close();
    await log?.close();
    await olap?.close();
  }
}

function printResult(r: RunResult): void {
  const note = r.reused ? ' (already succeeded with these parameters; not re-run)' : r.resumed ? ' (resumed)' : '';
  out(
    `run ${r.run.id} ${r.run.pipeline}${r.run.partition ? ` partition ${r.run.partition}` : ''}: ${r.run.status}${note}`,
  );
  const w = Math.max(5, ...r.stages.map((s) => s.stageId.length));
  out(`${'stage'.padEnd(w)}  ${'type'.padEnd(9)}  ${'status'.padEnd(9)}  ${'rows'.padStart(10)}  attempts  ms`);
  for (const s of r.stages)
    out(
      `${s.stageId.padEnd(w)}  ${s.type.padEnd(9)}  ${s.status.padEnd(9)}  ${(s.rows === null ? '-' : String(s.rows)).padStart(10)}  ${String(s.attempts).padStart(8)}  ${s.durationMs ?? '-'}${s.error ? `  ${s.error}` : ''}`,
    );
  if (r.quality.score !== null) {
    const dims = Object.entries(r.quality.dimensions)
      .map(([d, v]) => `${d} ${v.toFixed(3)}`)
      .join(', ');
    out(`quality score ${r.quality.score.toFixed(3)} (${dims})`);
  }
  if (r.run.error) out(`error: ${r.run.error}`);
  for (const e of r.lineageErrors) out(`lineage: ${e}`);
}

/** `tributary pipeline ...` and `tributary lineage DATASET`. */
export function registerPipelineCommands(program: Command): void {
  const pipeline = program.command('pipeline').description('pipelines with data quality, lineage and governance');
  const capture = (cmd: Command): void => {
    cmd.hook('preAction', () => {
      const w = cmd.configureOutput().writeOut;
      writer = w ?? ((s) => process.stdout.write(s));
    });
  };
  capture(pipeline);
  const dataDir = (c: Command): Command => c.option('--data-dir <dir>', 'data directory', './tributary-data');

  dataDir(
    pipeline
      .command('run <file>')
      .description('run a pipeline (YAML); prints its stages, row counts and quality score')
      .option('--param <key=value>', 'pipeline parameter (repeatable)', collect)
      .option('--partition <p>', 'the partition this run computes (e.g. 2024-01-31)')
      .option('--force', 'run again even if a run with these parameters succeeded')
      .option('--lineage-file <out.ndjson>', 'append OpenLineage events to this file')
      .option('--lineage-url <url>', 'POST OpenLineage events to this endpoint (Marquez: http://host:5000)'),
  ).action(
    async (
      file: string,
      o: Common & { param?: string[]; partition?: string; force?: boolean; lineageFile?: string; lineageUrl?: string },
    ) => {
      const { spec, baseDir } = readSpec(file);
      const r = await withRunner(o, spec, (runner) =>
        runner.run(spec, {
          params: parseParams(o.param),
          baseDir,
          ...(o.partition ? { partition: o.partition } : {}),
          ...(o.force ? { force: true } : {}),
        }),
      );
      printResult(r);
      if (r.run.status !== 'succeeded') process.exitCode = 1;
    },
  );

  dataDir(
    pipeline
      .command('schedule <file>')
      .description("run a pipeline on its cron schedule (the spec's `schedule`, UTC) until interrupted")
      .option('--cron <expr>', 'a cron expression instead of the spec schedule')
      .option('--lineage-file <out.ndjson>', 'append OpenLineage events to this file'),
  ).action(async (file: string, o: Common & { cron?: string; lineageFile?: string }) => {
    const { spec, baseDir } = readSpec(file);
    const cron = o.cron ?? spec.schedule;
    if (!cron) throw invalidArgument('schedule', `a cron expression in ${file} or --cron`);
    nextCronTime(cron, new Date()); // refuse a bad expression before waiting
    await withRunner(o, spec, async (runner) => {
      const scheduler = new Scheduler(async (sp, partition) => {
        const r = await runner.run(sp, { partition, baseDir });
        printResult(r);
      });
      const entry = scheduler.add(spec, cron);
      out(`${spec.name}: "${cron}", next run ${entry.next.toISOString()}`);
      scheduler.start();
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      scheduler.stop();
    });
  });

  dataDir(pipeline.command('validate <file>').description('check a pipeline file without running it')).action(
    async (file: string, o: Common) => {
      const { spec, baseDir } = readSpec(file);
      await withRunner(o, undefined, async (runner) => runner.checkPolicies(spec, baseDir));
      out(`${spec.name}: ${spec.stages.length} stages, valid`);
    },
  );

  dataDir(
    pipeline
      .command('backfill <file>')
      .description('one run per partition from..to; re-runs only failed or missing partitions')
      .requiredOption('--from <date>', 'first partition (YYYY-MM-DD, or YYYY-MM-DDTHH with --step hour)')
      .requiredOption('--to <date>', 'last partition (inclusive)')
      .option('--step <step>', 'day, hour or month', 'day')
      .option('--concurrency <n>', 'partitions run at once', '1')
      .option('--param <key=value>', 'pipeline parameter (repeatable)', collect)
      .option('--lineage-file <out.ndjson>', 'append OpenLineage events to this file'),
  ).action(
    async (
      file: string,
      o: Common & {
        from: string;
        to: string;
        step: string;
        concurrency: string;
        param?: string[];
        lineageFile?: string;
      },
    ) => {
      if (!['day', 'hour', 'month'].includes(o.step)) throw invalidArgument('--step', 'day, hour or month', o.step);
      const { spec, baseDir } = readSpec(file);
      const r = await withRunner(o, spec, (runner) =>
        runner.backfill(spec, {
          from: o.from,
          to: o.to,
          step: o.step as 'day',
          concurrency: Number(o.concurrency),
          params: parseParams(o.param),
          baseDir,
        }),
      );
      for (const p of r.partitions) out(`${p.partition}  ${p.status.padEnd(9)}  ${p.action.padEnd(7)}  ${p.runId}`);
      if (r.partitions.some((p) => p.status !== 'succeeded')) process.exitCode = 1;
    },
  );

  dataDir(
    pipeline
      .command('runs')
      .description('run history')
      .option('--pipeline <name>', 'only this pipeline')
      .option('--limit <n>', 'at most this many runs', '20'),
  ).action(async (o: Common & { pipeline?: string; limit: string }) => {
    await withRunner(o, undefined, async (runner) => {
      const runs = runner.store.listRuns({ limit: Number(o.limit), ...(o.pipeline ? { pipeline: o.pipeline } : {}) });
      for (const r of runs)
        out(
          `${r.id}  ${r.pipeline}  ${r.status.padEnd(9)}  ${r.partition ?? '-'}  ${r.createdAt}  score ${r.qualityScore === null ? '-' : r.qualityScore.toFixed(3)}${r.error ? `  ${r.error}` : ''}`,
        );
      if (!runs.length) out('(no runs)');
    });
  });

  dataDir(pipeline.command('show <runId>').description("a run's stages and quality")).action(
    async (id: string, o: Common) => {
      await withRunner(o, undefined, async (runner) => printResult({ ...runner.result(id), lineageErrors: [] }));
    },
  );

  dataDir(
    pipeline
      .command('resume <runId>')
      .description('re-run a failed run from its failed stages')
      .option('--lineage-file <out.ndjson>', 'append OpenLineage events to this file'),
  ).action(async (id: string, o: Common & { lineageFile?: string }) => {
    const r = await withRunner(o, undefined, async (runner) => {
      const run = runner.store.getRun(id);
      const spec = run.spec as PipelineSpec;
      return withRunner(o, spec, (r2) => r2.resume(id));
    });
    printResult(r);
    if (r.run.status !== 'succeeded') process.exitCode = 1;
  });

  const catalog = pipeline.command('catalog').description('the governance catalog');
  capture(catalog);
  dataDir(
    catalog
      .command('set <dataset>')
      .description('record owner, description, tags, PII columns of a dataset (kind:name)')
      .option('--owner <owner>')
      .option('--description <text>')
      .option('--tag <tag>', 'tag (repeatable)', collect)
      .option('--classification <c>', 'public, internal, confidential or restricted')
      .option('--retention <r>', 'e.g. 400d')
      .option('--pii <column>', 'a PII column (repeatable)', collect)
      .option('--pii-allowed', 'this dataset may hold PII'),
  ).action(async (id: string, o: Common & Record<string, unknown>) => {
    await withRunner(o, undefined, async (runner) => {
      const e = runner.governance.upsert(id, {
        ...(o.owner ? { owner: String(o.owner) } : {}),
        ...(o.description ? { description: String(o.description) } : {}),
        ...(o.tag ? { tags: o.tag as string[] } : {}),
        ...(o.classification ? { classification: o.classification as 'internal' } : {}),
        ...(o.retention ? { retention: String(o.retention) } : {}),
        ...(o.piiAllowed ? { piiAllowed: true } : {}),
        ...(o.pii ? { columns: Object.fromEntries((o.pii as string[]).map((c) => [c, { pii: true }])) } : {}),
      });
      out(JSON.stringify(e, null, 2));
    });
  });
  dataDir(catalog.command('show [dataset]').description('one dataset (with schema history), or all')).action(
    async (id: string | undefined, o: Common) => {
      await withRunner(o, undefined, async (runner) => {
        if (id)
          out(
            JSON.stringify(
              { ...runner.governance.get(id), schemaHistory: runner.governance.schemaHistory(id) },
              null,
              2,
            ),
          );
        else
          for (const d of runner.governance.list())
            out(
              `${d.id}  owner ${d.owner ?? '-'}  tags ${d.tags.join(',') || '-'}  pii ${
                Object.entries(d.columns)
                  .filter(([, c]) => c.pii)
                  .map(([n]) => n)
                  .join(',') || '-'
              }`,
            );
      });
    },
  );

  const lineage = program
    .command('lineage <dataset>')
    .description('datasets upstream or downstream of a dataset (kind:name, e.g. iceberg:db.orders), or of one column')
    .option('--upstream', 'what it is computed from (default)')
    .option('--downstream', 'what is computed from it')
    .option('--column <name>', 'column-level lineage of this column');
  capture(lineage);
  dataDir(lineage).action(
    async (dataset: string, o: Common & { upstream?: boolean; downstream?: boolean; column?: string }) => {
      if (o.upstream && o.downstream) throw invalidArgument('--upstream/--downstream', 'one of them');
      const dir = o.downstream ? 'downstream' : 'upstream';
      await withRunner(o, undefined, async (runner) => {
        const g = runner.lineageGraph();
        if (o.column) {
          const cols = g.columns(dataset, o.column, dir);
          for (const c of cols) out(c);
          if (!cols.length) out(`(no ${dir} columns of ${dataset}#${o.column})`);
          return;
        }
        const ds = g.walk(dataset, dir);
        for (const d of ds.sort((a, b) => a.depth - b.depth || (a.dataset < b.dataset ? -1 : 1)))
          out(`${'  '.repeat(d.depth - 1)}${d.dataset}  (via ${d.via.join(', ')})`);
        if (!ds.length) out(`(no ${dir} datasets of ${dataset})`);
      });
    },
  );
}
