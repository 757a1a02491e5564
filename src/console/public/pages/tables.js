// Iceberg tables (through the REST catalog at /iceberg): list, schema, partition spec, snapshots and a
// time-travel preview of the rows at any snapshot.
import {
  api,
  card,
  cell,
  enc,
  errorBox,
  fmtNumber,
  fmtTime,
  h,
  load,
  NotAvailable,
  notAvailable,
  table,
} from '../lib.js';

const SEP = '\u001f'; // the REST spec's separator for multi-level namespaces

export function render(main, args) {
  if (args.length >= 2) return tableView(main, args[0].split('.'), args[1]);
  const list = h('div', null, h('p.muted', null, 'Loading…'));
  main.append(h('h1', null, 'Tables'), card('Iceberg tables', list));
  load(list, 'The Iceberg catalog', async () => {
    const rows = [];
    const walk = async (parent) => {
      const q = parent.length ? `?parent=${enc(parent.join(SEP))}` : '';
      const { namespaces } = await api(`/iceberg/v1/namespaces${q}`);
      for (const ns of namespaces) {
        const { identifiers } = await api(`/iceberg/v1/namespaces/${enc(ns.join(SEP))}/tables`);
        for (const id of identifiers) rows.push({ namespace: id.namespace.join('.'), table: id.name });
        if (ns.length > parent.length && ns.length < 4) await walk(ns).catch(() => {});
      }
    };
    await walk([]);
    return table(
      rows,
      [
        'namespace',
        {
          key: 'table',
          render: (r) => h('a', { href: `#/tables/${enc(r.namespace)}/${enc(r.table)}` }, r.table),
        },
      ],
      {
        empty: 'No tables yet. Create one with `tributary lake create` or any Iceberg REST client.',
        onRowClick: (r) => {
          location.hash = `#/tables/${enc(r.namespace)}/${enc(r.table)}`;
        },
      },
    );
  });
}

function typeName(t) {
  return typeof t === 'string' ? t : JSON.stringify(t);
}

function tableView(main, namespace, name) {
  const head = h('div', null, h('p.muted', null, 'Loading…'));
  main.append(h('h1', null, h('a.crumb', { href: '#/tables' }, 'Tables / '), `${namespace.join('.')}.${name}`), head);
  let latest = null; // the newest snapshot, previewed once the page is drawn
  load(head, 'The Iceberg catalog', async () => {
    const loaded = await api(`/iceberg/v1/namespaces/${enc(namespace.join(SEP))}/tables/${enc(name)}`);
    const md = loaded.metadata;
    const schema = md.schemas.find((s) => s['schema-id'] === md['current-schema-id']) || md.schemas.at(-1);
    const spec = md['partition-specs'].find((s) => s['spec-id'] === md['default-spec-id']) || { fields: [] };
    const byId = new Map(schema.fields.map((f) => [f.id, f.name]));
    const snapshots = [...(md.snapshots || [])].sort((a, b) => b['timestamp-ms'] - a['timestamp-ms']);
    const current = md['current-snapshot-id'];
    const preview = h('div', { 'data-preview': true });
    latest = { snapshot: snapshots[0] };
    return [
      h(
        'div.grid2',
        null,
        card(
          `Schema (id ${schema['schema-id']}, ${md.schemas.length} version${md.schemas.length === 1 ? '' : 's'})`,
          table(schema.fields, [
            { key: 'id', numeric: true },
            'name',
            { key: 'type', render: (f) => typeName(f.type) },
            { key: 'required', render: (f) => (f.required ? 'yes' : 'no') },
            { key: 'doc', render: (f) => f.doc || '' },
          ]),
        ),
        card(
          'Partition spec',
          table(
            spec.fields,
            [
              { key: 'source', render: (f) => byId.get(f['source-id']) ?? `field ${f['source-id']}` },
              'transform',
              { key: 'name', label: 'partition field' },
            ],
            { empty: 'Unpartitioned.' },
          ),
          h(
            'dl.kv',
            { style: 'margin-top:12px' },
            h('dt', null, 'location'),
            h('dd', null, md.location),
            h('dt', null, 'format version'),
            h('dd', null, String(md['format-version'])),
            h('dt', null, 'table uuid'),
            h('dd', null, md['table-uuid']),
            Object.entries(md.properties || {}).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
          ),
        ),
      ),
      h('div', { style: 'height:16px' }),
      card(
        `Snapshots (${snapshots.length})`,
        table(
          snapshots,
          [
            {
              key: 'snapshot-id',
              label: 'snapshot id',
              render: (s) =>
                h(
                  'span',
                  null,
                  String(s['snapshot-id']),
                  String(s['snapshot-id']) === String(current)
                    ? h('span.pill', { style: 'margin-left:6px' }, 'current')
                    : null,
                ),
            },
            { key: 'timestamp-ms', label: 'committed (UTC)', render: (s) => fmtTime(s['timestamp-ms']) },
            { key: 'operation', render: (s) => s.summary?.operation ?? '' },
            {
              key: 'added',
              label: 'added rows',
              numeric: true,
              render: (s) => fmtNumber(s.summary?.['added-records']),
            },
            {
              key: 'total',
              label: 'total rows',
              numeric: true,
              render: (s) => fmtNumber(s.summary?.['total-records']),
            },
            {
              key: 'files',
              label: 'data files',
              numeric: true,
              render: (s) => fmtNumber(s.summary?.['total-data-files']),
            },
          ],
          {
            empty: 'No snapshots: the table has no data yet.',
            onRowClick: (s) => showPreview(preview, namespace, name, s),
          },
        ),
        snapshots.length ? h('p.muted', null, 'Click a snapshot to preview the table as of that snapshot.') : null,
      ),
      card('Time travel preview', preview),
    ];
  }).then(() => {
    const preview = head.querySelector('[data-preview]');
    if (!preview || !latest) return;
    if (latest.snapshot) showPreview(preview, namespace, name, latest.snapshot);
    else preview.append(h('p.muted', null, 'Nothing to preview.'));
  });
}

async function showPreview(el, namespace, name, snapshot) {
  const id = String(snapshot['snapshot-id']);
  el.replaceChildren(h('p.muted', null, `Loading snapshot ${id}…`));
  try {
    const r = await api(`/api/v1/tables/${enc(namespace.join('.'))}/${enc(name)}/preview?snapshot=${enc(id)}&limit=50`);
    const cols = r.rows.length ? Object.keys(r.rows[0]) : [];
    el.replaceChildren(
      h(
        'p.muted',
        null,
        `As of snapshot ${id} (${fmtTime(snapshot['timestamp-ms'])} UTC), first ${r.rows.length} rows:`,
      ),
      table(
        r.rows,
        cols.map((c) => ({ key: c, render: (row) => cell(row[c]) })),
        { class: 'preview', empty: 'The table was empty at this snapshot.' },
      ),
    );
  } catch (err) {
    el.replaceChildren(
      err instanceof NotAvailable
        ? notAvailable('Row preview (no scan endpoint); the snapshot list above')
        : errorBox(err),
    );
  }
}
