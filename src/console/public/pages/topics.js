// Topics: the list, one topic's partitions, config and consumers, and a message browser.
import { api, card, enc, fmtBytes, fmtNumber, fmtTime, h, load, table } from '../lib.js';

export function render(main, args) {
  if (args.length > 0) return topic(main, args[0]);
  const list = h('div', null, h('p.muted', null, 'Loading…'));
  main.append(h('h1', null, 'Topics'), card(null, list));
  const refresh = () =>
    load(list, 'Topics', async () => {
      const { topics } = await api('/api/v1/topics');
      return table(
        topics.filter((t) => !t.internal),
        [
          { key: 'name', label: 'topic', render: (t) => h('a', { href: `#/topics/${enc(t.name)}` }, t.name) },
          { key: 'partitions', label: 'partitions', numeric: true },
          { key: 'messages', label: 'messages', numeric: true, render: (t) => fmtNumber(t.messages) },
          { key: 'sizeBytes', label: 'size', numeric: true, render: (t) => fmtBytes(t.sizeBytes) },
          {
            key: 'offsets',
            label: 'end offsets',
            render: (t) => t.offsets.map((o) => `${o.partition}: ${o.highWatermark}`).join('  '),
          },
        ],
        { empty: 'No topics yet. Produce to one with any Kafka client.', onRowClick: (t) => go(t.name) },
      );
    });
  refresh();
  const timer = setInterval(refresh, 3000);
  return () => clearInterval(timer);
}

function go(name) {
  location.hash = `#/topics/${enc(name)}`;
}

function topic(main, name) {
  const partitions = h('div', null, h('p.muted', null, 'Loading…'));
  const config = h('div');
  const consumers = h('div');
  const browser = h('div');
  main.append(
    h('h1', null, h('a.crumb', { href: '#/topics' }, 'Topics / '), name),
    card('Partitions', partitions),
    card('Messages', browser),
    card('Consumer groups', consumers),
    card('Configuration', config),
  );
  load(partitions, 'Topic', async () => {
    const t = await api(`/api/v1/topics/${enc(name)}`);
    config.replaceChildren(
      h(
        'dl.kv',
        null,
        Object.entries(t.config).flatMap(([k, v]) => [
          h('dt', null, k, k in t.overrides ? ' *' : ''),
          h('dd', null, String(v)),
        ]),
      ),
      h('p.muted', null, '* set on this topic; the rest are broker defaults.'),
    );
    browser.replaceChildren(messageBrowser(name, t.partitions));
    return table(t.partitions, [
      { key: 'partition', numeric: true },
      { key: 'logStartOffset', label: 'log start', numeric: true },
      { key: 'highWatermark', label: 'high watermark', numeric: true },
      { key: 'lastStableOffset', label: 'LSO', numeric: true },
      { key: 'messages', numeric: true, render: (p) => fmtNumber(p.messages) },
      { key: 'sizeBytes', label: 'size', numeric: true, render: (p) => fmtBytes(p.sizeBytes) },
      { key: 'segments', numeric: true },
    ]);
  });
  load(consumers, 'Consumer groups', async () => {
    const { groups } = await api('/api/v1/groups');
    const rows = groups.flatMap((g) =>
      g.offsets.filter((o) => o.topic === name).map((o) => ({ group: g.groupId, state: g.state, ...o })),
    );
    return table(
      rows,
      [
        'group',
        'state',
        { key: 'partition', numeric: true },
        { key: 'offset', label: 'committed', numeric: true },
        { key: 'lag', numeric: true },
      ],
      { empty: 'No group has committed offsets for this topic.' },
    );
  });
}

function show(v) {
  if (v === null) return h('span.muted', null, 'null');
  if ('base64' in v) return h('code', { title: 'binary, shown as base64' }, `base64:${v.base64}`);
  let text = v.text;
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === 'object') text = JSON.stringify(parsed);
  } catch {
    // not JSON: show as is
  }
  return h('code', null, text.length > 400 ? `${text.slice(0, 400)}…` : text);
}

function messageBrowser(name, partitions) {
  const partition = h(
    'select',
    { 'aria-label': 'partition' },
    partitions.map((p) => h('option', { value: p.partition }, `partition ${p.partition}`)),
  );
  const offset = h('input', { type: 'number', min: 0, placeholder: 'newest', size: 10, 'aria-label': 'offset' });
  const limit = h(
    'select',
    { 'aria-label': 'limit' },
    [20, 50, 100, 500].map((n) => h('option', { value: n, selected: n === 50 }, `${n} messages`)),
  );
  const out = h('div');
  let page = null;
  const fetchPage = (from) => {
    const q = new URLSearchParams({ partition: partition.value, limit: limit.value });
    if (from !== undefined && from !== '') q.set('offset', String(from));
    return load(out, 'Messages', async () => {
      page = await api(`/api/v1/topics/${enc(name)}/messages?${q}`);
      offset.value = String(page.offset);
      return [
        h(
          'p.muted',
          null,
          `Offsets ${page.offset}–${Math.max(page.offset, page.nextOffset - 1)} of ${page.logStartOffset}–${page.highWatermark - 1}`,
        ),
        table(
          page.messages,
          [
            { key: 'offset', numeric: true },
            { key: 'timestamp', label: 'timestamp (UTC)', render: (m) => fmtTime(m.timestamp) },
            { key: 'key', render: (m) => show(m.key) },
            { key: 'value', render: (m) => show(m.value) },
            {
              key: 'headers',
              render: (m) => m.headers.map((x) => h('span.pill', null, `${x.key}=${x.value?.text ?? '…'}`)),
            },
          ],
          { class: 'messages', empty: 'No messages in this range.' },
        ),
      ];
    });
  };
  const older = () => {
    const n = Number(limit.value);
    fetchPage(Math.max(0, (page ? page.offset : 0) - n));
  };
  const newer = () => fetchPage(page ? page.nextOffset : undefined);
  partition.addEventListener('change', () => fetchPage());
  fetchPage();
  return h(
    'div',
    null,
    h(
      'div.toolbar',
      null,
      partition,
      h('label', null, 'from offset', offset),
      limit,
      h('button.primary', { onclick: () => fetchPage(offset.value) }, 'Load'),
      h('button', { onclick: older }, '← Older'),
      h('button', { onclick: newer }, 'Newer →'),
      h('button', { onclick: () => fetchPage() }, 'Newest'),
    ),
    out,
  );
}
