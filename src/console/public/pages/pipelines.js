// Pipelines (the pipeline API under /api/v1): pipelines, runs, and one run's DAG, stage results,
// quality scores and lineage.
import { graph } from '../charts.js';
import { api, card, enc, fmtNumber, h, load, table } from '../lib.js';

const runLink = (id) => `#/pipelines/run/${enc(id)}`;

function statusPill(status) {
  return h(`span.pill.status-${String(status).toLowerCase()}`, null, String(status ?? ''));
}

export function render(main, args) {
  if (args[0] === 'run' && args[1]) return run(main, args[1]);
  const pipeline = args[0];
  const list = h('div', null, h('p.muted', null, 'Loading…'));
  const runs = h('div');
  main.append(
    h('h1', null, pipeline ? [h('a.crumb', { href: '#/pipelines' }, 'Pipelines / '), pipeline] : 'Pipelines'),
    pipeline ? null : card('Pipelines', list),
    card(pipeline ? 'Runs' : 'Recent runs', runs),
  );
  const refresh = () => {
    if (!pipeline)
      load(list, 'Pipelines', async () =>
        table(
          await api('/api/v1/pipelines'),
          [
            { key: 'name', render: (p) => h('a', { href: `#/pipelines/${enc(p.name)}` }, p.name) },
            { key: 'runs', numeric: true },
            { key: 'lastRun', label: 'last run' },
            { key: 'lastStatus', label: 'last status', render: (p) => statusPill(p.lastStatus) },
          ],
          { empty: 'No pipelines have run yet.' },
        ),
      );
    load(runs, 'Pipeline runs', async () =>
      table(
        await api(`/api/v1/runs?limit=50${pipeline ? `&pipeline=${enc(pipeline)}` : ''}`),
        [
          { key: 'id', label: 'run', render: (r) => h('a', { href: runLink(r.id) }, r.id) },
          'pipeline',
          { key: 'partition', render: (r) => r.partition ?? '' },
          { key: 'status', render: (r) => statusPill(r.status) },
          { key: 'createdAt', label: 'created' },
          { key: 'attempts', numeric: true },
          {
            key: 'qualityScore',
            label: 'quality',
            numeric: true,
            render: (r) => (r.qualityScore === null ? '' : fmtNumber(r.qualityScore)),
          },
        ],
        {
          empty: 'No runs yet.',
          onRowClick: (r) => {
            location.hash = runLink(r.id);
          },
        },
      ),
    );
  };
  refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}

/** The stage DAG of a run: each stage after the stages it reads. */
function dag(spec, stages) {
  const status = new Map(stages.map((s) => [s.stageId, s.status]));
  const nodes = (spec?.stages ?? []).map((s) => ({
    id: s.id,
    label: `${s.id} (${s.type}) · ${status.get(s.id) ?? 'not run'}`,
    kind: String(status.get(s.id) ?? '').toLowerCase(),
  }));
  const edges = (spec?.stages ?? []).flatMap((s) =>
    [...(s.inputs ?? []), ...(s.lookup?.from && nodes.some((n) => n.id === s.lookup.from) ? [s.lookup.from] : [])].map(
      (from) => ({ from, to: s.id }),
    ),
  );
  return nodes.length ? graph(nodes, edges) : h('p.muted', null, 'The run has no stage list.');
}

function run(main, id) {
  const body = h('div', null, h('p.muted', null, 'Loading…'));
  main.append(h('h1', null, h('a.crumb', { href: '#/pipelines' }, 'Pipelines / '), id), body);
  load(body, 'Pipeline run', async () => {
    const r = await api(`/api/v1/runs/${enc(id)}`);
    const lineage = await api(`/api/v1/runs/${enc(id)}/lineage`).catch(() => []);
    const lg = lineageGraph(lineage);
    return [
      h(
        'div.stats',
        null,
        h(
          'div.stat',
          null,
          h('div.stat-value', null, statusPill(r.run.status)),
          h('div.stat-label', null, r.run.pipeline),
        ),
        h(
          'div.stat',
          null,
          h('div.stat-value', null, r.quality.score === null ? '–' : fmtNumber(r.quality.score)),
          h('div.stat-label', null, 'quality score'),
        ),
        h('div.stat', null, h('div.stat-value', null, String(r.stages.length)), h('div.stat-label', null, 'stages')),
      ),
      r.run.error ? h('div.error', null, r.run.error) : null,
      card('Stages', dag(r.run.spec, r.stages)),
      card(
        'Stage results',
        table(r.stages, [
          'stageId',
          'type',
          { key: 'status', render: (s) => statusPill(s.status) },
          { key: 'attempts', numeric: true },
          { key: 'rows', numeric: true, render: (s) => fmtNumber(s.rows) },
          { key: 'durationMs', label: 'ms', numeric: true, render: (s) => fmtNumber(s.durationMs) },
          { key: 'error', render: (s) => s.error ?? '' },
        ]),
      ),
      card(
        'Quality',
        table(
          Object.entries(r.quality.dimensions).map(([dimension, score]) => ({ dimension, score })),
          ['dimension', { key: 'score', numeric: true, render: (x) => fmtNumber(x.score) }],
          { empty: 'No quality checks in this run.' },
        ),
        r.quality.datasets.length
          ? table(r.quality.datasets, [
              'stageId',
              'dataset',
              { key: 'score', numeric: true, render: (x) => fmtNumber(x.score) },
            ])
          : null,
      ),
      card('Lineage', lg ?? h('p.muted', null, 'No lineage events for this run.')),
    ];
  });
}

/** A graph from OpenLineage run events: each job between its input and output datasets. */
export function lineageGraph(events) {
  const list = (Array.isArray(events) ? events : []).filter((e) => e?.job);
  if (list.length === 0) return null;
  const nodes = new Map();
  const edges = new Map();
  const ds = (d) => `${d.namespace}/${d.name}`;
  for (const e of list) {
    const job = `job:${e.job.namespace}/${e.job.name}`;
    nodes.set(job, { id: job, label: e.job.name, kind: 'job' });
    for (const i of e.inputs ?? []) {
      nodes.set(ds(i), { id: ds(i), label: i.name, kind: 'dataset' });
      edges.set(`${ds(i)}>${job}`, { from: ds(i), to: job });
    }
    for (const o of e.outputs ?? []) {
      nodes.set(ds(o), { id: ds(o), label: o.name, kind: 'dataset' });
      edges.set(`${job}>${ds(o)}`, { from: job, to: ds(o) });
    }
  }
  return graph([...nodes.values()], [...edges.values()]);
}
