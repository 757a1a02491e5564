// Jobs, CEP alerts, pipelines and lineage: these pages load live data from their endpoints when the
// server mounts them, and say "not available yet" when it does not (404).
import { graph } from '../charts.js';
import { api, card, cell, enc, errorBox, h, load, NotAvailable, notAvailable, table } from '../lib.js';
import { lineageGraph } from './pipelines.js';

/** The list in a response: the body itself, `body[key]`, or its first array-valued field. */
function rowsOf(body, key) {
  if (Array.isArray(body)) return body;
  if (body && typeof body === 'object') {
    if (Array.isArray(body[key])) return body[key];
    const first = Object.values(body).find(Array.isArray);
    if (first) return first;
  }
  return [];
}

/** A table over whatever objects an endpoint returns: the first keys seen, nested values as JSON. */
function genericTable(rows, options = {}) {
  const keys = [];
  for (const r of rows.slice(0, 20))
    for (const k of Object.keys(r && typeof r === 'object' ? r : { value: r })) if (!keys.includes(k)) keys.push(k);
  const preferred = ['id', 'name', 'jobId', 'pipeline', 'state', 'status'];
  keys.sort((a, b) => (preferred.indexOf(b) + 1 || -1) - (preferred.indexOf(a) + 1 || -1) || 0);
  const objects = rows.map((r) => (r && typeof r === 'object' ? r : { value: r }));
  return table(
    objects,
    keys.slice(0, 9).map((k) => ({ key: k, render: (r) => cell(r[k]) })),
    options,
  );
}

function idOf(r) {
  return r?.id ?? r?.jobId ?? r?.name ?? r?.runId;
}

/** Nodes and edges from a topology-like object: `{ nodes, edges }`, `{ topology: {...} }` or `{ operators }`. */
function graphOf(x) {
  const t = x?.topology ?? x?.graph ?? x?.dag ?? x;
  if (!t || typeof t !== 'object') return null;
  const nodes = t.nodes ?? t.operators ?? t.stages;
  if (!Array.isArray(nodes) || nodes.length === 0) return null;
  const ns = nodes.map((n) => (typeof n === 'string' ? { id: n } : { ...n, id: n.id ?? n.name }));
  let edges = (t.edges ?? t.links ?? []).map((e) => ({
    from: e.from ?? e.source ?? e[0],
    to: e.to ?? e.target ?? e[1],
  }));
  if (edges.length === 0)
    edges = ns.flatMap((n) =>
      (n.dependsOn ?? n.inputs ?? n.upstream ?? []).map((u) => ({ from: typeof u === 'string' ? u : u.id, to: n.id })),
    );
  return graph(
    ns.map((n) => ({ id: n.id, label: n.label ?? n.name ?? n.id, kind: n.kind ?? n.type })),
    edges,
  );
}

function detailPage(main, title, base, id, back) {
  const body = h('div', null, h('p.muted', null, 'Loading…'));
  main.append(h('h1', null, h('a.crumb', { href: back }, `${title} / `), id), body);
  load(body, title, async () => {
    const d = await api(`${base}/${enc(id)}`);
    const g = graphOf(d);
    const metrics = d?.metrics ?? d?.operators ?? d?.stages ?? d?.results;
    return [
      g ? card('Topology', g) : null,
      Array.isArray(metrics) && metrics.length ? card('Operators / stages', genericTable(metrics)) : null,
      card('Details', h('pre', null, JSON.stringify(d, null, 2))),
    ];
  });
}

function listPage(main, { title, url, key, what, empty, link, poll }) {
  const body = h('div', null, h('p.muted', null, 'Loading…'));
  main.append(h('h1', null, title), card(null, body));
  let unavailable = false;
  const refresh = async () => {
    if (unavailable) return;
    try {
      const rows = rowsOf(await api(url), key);
      body.replaceChildren(
        genericTable(rows, {
          empty,
          onRowClick: link
            ? (r) => {
                if (idOf(r) !== undefined) location.hash = `${link}/${enc(idOf(r))}`;
              }
            : null,
        }),
      );
    } catch (err) {
      unavailable = err instanceof NotAvailable;
      body.replaceChildren(unavailable ? notAvailable(what) : errorBox(err));
    }
  };
  refresh();
  if (!poll) return undefined;
  const timer = setInterval(refresh, poll);
  return () => clearInterval(timer);
}

export function jobs(main, args) {
  if (args[0]) return detailPage(main, 'Jobs', '/api/v1/jobs', args[0], '#/jobs');
  return listPage(main, {
    title: 'Jobs',
    url: '/api/v1/jobs',
    key: 'jobs',
    what: 'Stream jobs',
    empty: 'No jobs running. Submit a JSON job spec to POST /api/v1/jobs.',
    link: '#/jobs',
    poll: 3000,
  });
}

export function cep(main) {
  const body = h('div', null, h('p.muted', null, 'Loading…'));
  main.append(h('h1', null, 'CEP alerts'), card(null, body));
  let mode = 'endpoint';
  // alerts arrive continuously: poll, newest first
  const refresh = async () => {
    try {
      if (mode === 'endpoint') {
        try {
          const rows = rowsOf(await api('/api/v1/cep/alerts'), 'alerts');
          body.replaceChildren(genericTable([...rows].reverse(), { empty: 'No alerts yet.' }));
          return;
        } catch (err) {
          if (!(err instanceof NotAvailable)) throw err;
          mode = 'topics';
        }
      }
      body.replaceChildren(...(await alertTopics()));
    } catch (err) {
      body.replaceChildren(err instanceof NotAvailable ? notAvailable('CEP alerts') : errorBox(err));
    }
  };
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => clearInterval(timer);
}

/** Without a CEP endpoint: the newest records of topics whose name says "alert" (where CEP jobs write). */
async function alertTopics() {
  const { topics } = await api('/api/v1/topics');
  const names = topics.filter((t) => !t.internal && /alert/i.test(t.name)).map((t) => t.name);
  if (names.length === 0) return [notAvailable('CEP alerts')];
  const out = [];
  for (const name of names) {
    const t = await api(`/api/v1/topics/${enc(name)}`);
    const rows = [];
    for (const p of t.partitions) {
      const page = await api(`/api/v1/topics/${enc(name)}/messages?partition=${p.partition}&limit=50`);
      for (const m of page.messages) {
        let value = m.value?.text ?? m.value?.base64 ?? null;
        try {
          const parsed = JSON.parse(value);
          if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) value = parsed;
        } catch {
          // not JSON: show the text
        }
        rows.push({ _time: m.timestamp, ...(typeof value === 'object' && value ? value : { value }) });
      }
    }
    rows.sort((a, b) => b._time - a._time);
    out.push(
      h(
        'div',
        { 'data-source': 'topic' },
        h('p.muted', null, `Newest alerts from topic `, h('a', { href: `#/topics/${enc(name)}` }, name)),
        genericTable(
          rows.slice(0, 50).map(({ _time, ...r }) => ({ time: new Date(Number(_time)).toISOString(), ...r })),
          {
            empty: 'No alerts yet.',
          },
        ),
      ),
    );
  }
  return out;
}

/** Lineage as a graph: `{ nodes, edges }`, or OpenLineage run events (job -> its input and output datasets). */
function lineageGraphOf(body) {
  return graphOf(body) ?? lineageGraph(rowsOf(body, 'events'));
}

export function lineage(main) {
  const body = h('div', null, h('p.muted', null, 'Loading…'));
  main.append(h('h1', null, 'Lineage'), card('Datasets and jobs', body));
  load(body, 'Lineage', async () => {
    let g;
    try {
      g = lineageGraphOf(await api('/api/v1/lineage'));
    } catch (err) {
      if (!(err instanceof NotAvailable)) throw err;
      // no lineage endpoint: gather the OpenLineage events of recent pipeline runs
      const runs = await api('/api/v1/runs?limit=20');
      const events = [];
      for (const r of runs) events.push(...(await api(`/api/v1/runs/${enc(r.id)}/lineage`).catch(() => [])));
      g = lineageGraph(events);
    }
    return g ?? h('p.muted', null, 'No lineage recorded yet. Pipeline runs record OpenLineage events.');
  });
}
