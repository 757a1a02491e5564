// Overview: totals, messages/s over time and consumer lag over time (from /api/v1/overview's sampler).
import { lineChart } from '../charts.js';
import { api, card, errorBox, fmtBytes, fmtNumber, h, NotAvailable, notAvailable, stat } from '../lib.js';

const clock = (ms) => new Date(ms).toTimeString().slice(0, 8);

export function render(main) {
  const stats = h('div.stats');
  const throughput = h('div');
  const lag = h('div');
  const groups = h('div');
  main.append(
    h('h1', null, 'Overview'),
    stats,
    h('div.grid2', null, card('Throughput (messages/s)', throughput), card('Consumer lag (messages)', lag)),
    h('div', { style: 'height:16px' }),
    card('Consumer groups', groups),
  );
  let stopped = false;
  const refresh = async () => {
    const extra = await Promise.allSettled([api('/druid/v2/datasources'), countTables()]);
    try {
      const o = await api('/api/v1/overview');
      if (stopped) return;
      stats.replaceChildren(
        stat('topics', fmtNumber(o.topics)),
        stat('partitions', fmtNumber(o.partitions)),
        stat('messages', fmtNumber(o.messages)),
        stat('stored', fmtBytes(o.bytes)),
        stat('consumer groups', fmtNumber(o.groups)),
        stat('datasources', extra[0].status === 'fulfilled' ? fmtNumber(extra[0].value.length) : '–'),
        stat('lake tables', extra[1].status === 'fulfilled' ? fmtNumber(extra[1].value) : '–'),
      );
      // the total, and the busiest topics when there are several
      const rates = new Map();
      for (const s of o.throughput)
        for (const [t, r] of Object.entries(s.topics || {})) rates.set(t, (rates.get(t) || 0) + r);
      const busiest = [...rates].sort((a, b) => b[1] - a[1]).slice(0, 5);
      const series = [{ name: 'all topics', points: o.throughput.map((s) => ({ x: s.time, y: s.messagesPerSecond })) }];
      if (rates.size > 1)
        for (const [t] of busiest)
          series.push({ name: t, points: o.throughput.map((s) => ({ x: s.time, y: s.topics?.[t] ?? 0 })) });
      throughput.replaceChildren(lineChart(series, { title: 'messages per second', xLabel: clock }));
      const names = [...new Set(o.lag.flatMap((s) => Object.keys(s.groups)))];
      lag.replaceChildren(
        lineChart(
          names.map((g) => ({
            name: g,
            points: o.lag.filter((s) => g in s.groups).map((s) => ({ x: s.time, y: s.groups[g] })),
          })),
          { title: 'consumer lag', xLabel: clock, legend: true, empty: 'No consumer groups yet.' },
        ),
      );
    } catch (err) {
      if (stopped) return;
      stats.replaceChildren(err instanceof NotAvailable ? notAvailable('The log overview') : errorBox(err));
    }
    try {
      const g = await api('/api/v1/groups');
      if (stopped) return;
      groups.replaceChildren(
        g.groups.length === 0
          ? h('p.muted', null, 'No consumer groups yet.')
          : h(
              'div.table-wrap',
              null,
              h(
                'table',
                null,
                h(
                  'thead',
                  null,
                  h(
                    'tr',
                    null,
                    ['group', 'state', 'members', 'topics', 'lag'].map((c) => h('th', null, c)),
                  ),
                ),
                h(
                  'tbody',
                  null,
                  g.groups.map((x) =>
                    h(
                      'tr',
                      null,
                      h('td', null, x.groupId),
                      h('td', null, x.state),
                      h('td', null, String(x.members.length)),
                      h('td', null, [...new Set(x.offsets.map((o) => o.topic))].join(', ')),
                      h('td.num', null, fmtNumber(x.lag)),
                    ),
                  ),
                ),
              ),
            ),
      );
    } catch (err) {
      if (!stopped)
        groups.replaceChildren(err instanceof NotAvailable ? notAvailable('Consumer groups') : errorBox(err));
    }
  };
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

async function countTables() {
  const { namespaces } = await api('/iceberg/v1/namespaces');
  let n = 0;
  for (const ns of namespaces) {
    const { identifiers } = await api(`/iceberg/v1/namespaces/${encodeURIComponent(ns.join('\u001f'))}/tables`);
    n += identifiers.length;
  }
  return n;
}
