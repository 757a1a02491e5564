// Datasources: the Druid-compatible engine's datasources, their columns, and a Druid SQL editor whose
// results show as a table and a chart.
import { barChart, lineChart } from '../charts.js';
import { api, card, cell, enc, errorBox, fmtTime, h, load, table } from '../lib.js';

export function render(main) {
  const list = h('div', null, h('p.muted', null, 'Loading…'));
  const detail = h('div');
  const editor = h('textarea', { id: 'sql', spellcheck: 'false', 'aria-label': 'Druid SQL' });
  const run = h('button.primary', { id: 'run-query' }, 'Run query');
  const status = h('span.muted');
  const results = h('div', { id: 'results' });
  const chart = h('div', { id: 'chart' });
  const ingestion = h('div');
  editor.value = sessionStorage.getItem('tributary.sql') || '';

  const execute = async () => {
    const query = editor.value.trim();
    if (!query) return;
    sessionStorage.setItem('tributary.sql', editor.value);
    run.disabled = true;
    status.textContent = 'Running…';
    const started = performance.now();
    try {
      const rows = await api('/druid/v2/sql', {
        method: 'POST',
        body: { query, resultFormat: 'array', header: true, sqlTypesHeader: true },
      });
      const [names = [], types = [], ...data] = rows;
      status.textContent = `${data.length} row${data.length === 1 ? '' : 's'} in ${Math.round(performance.now() - started)} ms`;
      results.replaceChildren(
        table(
          data.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i]]))),
          names.map((n) => ({
            key: n,
            label: n,
            numeric: isNumericType(types[names.indexOf(n)]),
            render: (r) => cell(r[n]),
          })),
          { class: 'results', empty: 'The query returned no rows.' },
        ),
      );
      chart.replaceChildren(chartFor(names, types, data));
    } catch (err) {
      status.textContent = '';
      results.replaceChildren(errorBox(err));
      chart.replaceChildren();
    } finally {
      run.disabled = false;
    }
  };
  run.addEventListener('click', execute);
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      execute();
    }
  });

  main.append(
    h('h1', null, 'Datasources'),
    h('div.grid2', null, card('Datasources', list), card('Columns', detail)),
    h('div', { style: 'height:16px' }),
    card(
      'Druid SQL',
      editor,
      h('div.toolbar', { style: 'margin-top:8px' }, run, h('span.muted', null, 'Ctrl+Enter'), status),
      chart,
      results,
    ),
    card('Ingestion (tasks and supervisors)', ingestion),
  );

  const pick = (name) => {
    if (!editor.value.trim() || /^SELECT \* FROM "[^"]*" ORDER BY __time DESC LIMIT 100$/.test(editor.value.trim()))
      editor.value = `SELECT * FROM "${name.replaceAll('"', '""')}" ORDER BY __time DESC LIMIT 100`;
    load(detail, 'Datasource details', async () => {
      const d = await api(`/druid/v2/datasources/${enc(name)}`);
      return [
        h('p', null, h('strong', null, name)),
        h('p.muted', null, 'Dimensions'),
        h(
          'div',
          null,
          (d.dimensions || []).map((x) => h('span.pill', null, x)),
        ),
        h('p.muted', null, 'Metrics'),
        h(
          'div',
          null,
          (d.metrics || []).map((x) => h('span.pill', null, x)),
        ),
      ];
    });
  };

  load(list, 'Datasources', async () => {
    const names = await api('/druid/v2/datasources');
    if (names.length) pick(names[0]);
    else detail.replaceChildren(h('p.muted', null, 'No datasource yet.'));
    return table(
      names.map((n) => ({ name: n })),
      [{ key: 'name', label: 'datasource', render: (r) => h('a', { href: '#/datasources' }, r.name) }],
      {
        empty: 'No datasources yet. Submit an ingestion task or a Kafka supervisor to /druid/indexer/v1.',
        onRowClick: (r) => pick(r.name),
      },
    );
  });

  load(ingestion, 'Ingestion', async () => {
    const [tasks, ids] = await Promise.all([
      api('/druid/indexer/v1/tasks').catch(() => []),
      api('/druid/indexer/v1/supervisor').catch(() => []),
    ]);
    const sups = await Promise.all(
      ids.map((id) =>
        api(`/druid/indexer/v1/supervisor/${enc(id)}/status`)
          .then((s) => ({ id, ...s.payload }))
          .catch(() => ({ id })),
      ),
    );
    return [
      h('p.muted', null, 'Kafka supervisors'),
      table(
        sups,
        [
          'id',
          { key: 'state', render: (s) => s.state ?? '' },
          { key: 'stream', label: 'topic', render: (s) => s.stream ?? '' },
          { key: 'aggregateLag', label: 'lag', numeric: true, render: (s) => String(s.aggregateLag ?? '') },
        ],
        { empty: 'No Kafka supervisors.' },
      ),
      h('p.muted', null, 'Tasks'),
      table(
        tasks.slice(0, 50),
        [
          { key: 'id' },
          { key: 'dataSource', label: 'datasource' },
          { key: 'status', render: (t) => t.status ?? t.statusCode ?? '' },
          { key: 'createdTime', label: 'created', render: (t) => t.createdTime ?? '' },
        ],
        { empty: 'No ingestion tasks.' },
      ),
    ];
  });
}

function isNumericType(t) {
  return /^(BIGINT|INTEGER|SMALLINT|TINYINT|DOUBLE|FLOAT|REAL|DECIMAL|LONG)/i.test(String(t || ''));
}

/** Picks a chart for a result: time on x -> lines, a label column -> bars, else bars by row number. */
function chartFor(names, types, data) {
  if (data.length === 0) return h('div');
  const numeric = names
    .map((_n, i) => i)
    .filter((i) => isNumericType(types[i]) || data.every((r) => typeof r[i] === 'number'));
  const timeCol = names.findIndex((n, i) => /^TIMESTAMP/i.test(String(types[i])) || n === '__time');
  const ys = numeric.filter((i) => i !== timeCol).slice(0, 6);
  if (ys.length === 0) return h('p.muted', null, 'No numeric column to chart.');
  if (timeCol >= 0 && data.length > 1) {
    return lineChart(
      ys.map((i) => ({
        name: names[i],
        points: data.map((r) => ({ x: Date.parse(r[timeCol]), y: Number(r[i]) })).filter((p) => Number.isFinite(p.x)),
      })),
      { title: 'query result', xLabel: (x) => fmtTime(x).slice(0, 16), legend: true },
    );
  }
  const labelCol = names.findIndex((_, i) => !numeric.includes(i));
  const rows = data.slice(0, 60);
  const labels = rows.map((r, j) => (labelCol >= 0 ? String(r[labelCol] ?? 'null') : String(j + 1)));
  return barChart(
    labels,
    ys.map((i) => ({ name: names[i], values: rows.map((r) => Number(r[i])) })),
    { title: 'query result' },
  );
}
