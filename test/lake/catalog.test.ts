import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { IcebergRestCatalog } from 'iceberg-js';
import { isTributaryError } from '../../src/core/index.ts';
import {
  type Catalog,
  createTable,
  icebergRestRoutes,
  loadTable,
  RestCatalog,
  SqliteCatalog,
} from '../../src/lake/index.ts';
import { EVENTS_SCHEMA, ids, range, tempDir } from './helpers.ts';

interface Impl {
  name: string;
  setup(): Promise<{ catalog: Catalog; teardown(): Promise<void> }>;
}

async function restServer(dir: string): Promise<{ app: FastifyInstance; url: string; backing: SqliteCatalog }> {
  const backing = new SqliteCatalog({ warehouse: dir });
  const app = Fastify();
  await app.register(icebergRestRoutes, { catalog: backing, prefix: '/iceberg' });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: `${address}/iceberg`, backing };
}

const impls: Impl[] = [
  {
    name: 'SqliteCatalog',
    async setup() {
      const tmp = tempDir();
      const catalog = new SqliteCatalog({ warehouse: tmp.dir });
      return {
        catalog,
        teardown: async () => {
          await catalog.close();
          tmp.cleanup();
        },
      };
    },
  },
  {
    name: 'RestCatalog (over the REST server)',
    async setup() {
      const tmp = tempDir();
      const { app, url, backing } = await restServer(tmp.dir);
      const catalog = new RestCatalog({ uri: url });
      return {
        catalog,
        teardown: async () => {
          await app.close();
          await backing.close();
          tmp.cleanup();
        },
      };
    },
  },
];

for (const impl of impls) {
  describe(`Catalog conformance: ${impl.name}`, () => {
    let catalog: Catalog;
    let teardown: () => Promise<void>;
    before(async () => {
      ({ catalog, teardown } = await impl.setup());
    });
    after(async () => teardown());

    it('namespaces: create, list, properties, exists, drop', async () => {
      await catalog.createNamespace(['db'], { owner: 'ann' });
      await catalog.createNamespace(['db', 'sub']);
      await catalog.createNamespace(['other']);
      assert.deepEqual(await catalog.listNamespaces(), [['db'], ['other']]);
      assert.deepEqual(await catalog.listNamespaces(['db']), [['db', 'sub']]);
      assert.deepEqual(await catalog.loadNamespaceProperties(['db']), { owner: 'ann' });
      await catalog.updateNamespaceProperties(['db'], ['owner'], { team: 'data' });
      assert.deepEqual(await catalog.loadNamespaceProperties(['db']), { team: 'data' });
      assert.equal(await catalog.namespaceExists(['nope']), false);
      await assert.rejects(catalog.createNamespace(['db']), (e: unknown) => isTributaryError(e, 'ALREADY_EXISTS'));
      await assert.rejects(catalog.loadNamespaceProperties(['nope']), (e: unknown) => isTributaryError(e, 'NOT_FOUND'));
      await catalog.dropNamespace(['other']);
      assert.equal(await catalog.namespaceExists(['other']), false);
    });

    it('tables: create, load, list, rename, drop, with precise errors', async () => {
      const t = await createTable(
        catalog,
        { namespace: ['db'], name: 't1' },
        { schema: EVENTS_SCHEMA, partition: 'bucket(4, id)', properties: { a: 'b' } },
      );
      assert.equal(t.metadata.properties.a, 'b');
      assert.equal(t.spec().fields[0]?.transform, 'bucket[4]');
      assert.deepEqual(
        (await catalog.listTables(['db'])).map((x) => x.name),
        ['t1'],
      );
      await assert.rejects(
        createTable(catalog, { namespace: ['db'], name: 't1' }, { schema: EVENTS_SCHEMA }),
        (e: unknown) => isTributaryError(e, 'ALREADY_EXISTS'),
      );
      await assert.rejects(catalog.loadTable({ namespace: ['db'], name: 'missing' }), (e: unknown) =>
        isTributaryError(e, 'NOT_FOUND'),
      );
      await catalog.renameTable({ namespace: ['db'], name: 't1' }, { namespace: ['db', 'sub'], name: 't2' });
      assert.equal(await catalog.tableExists({ namespace: ['db'], name: 't1' }), false);
      assert.equal(await catalog.tableExists({ namespace: ['db', 'sub'], name: 't2' }), true);
      await assert.rejects(catalog.dropNamespace(['db', 'sub']), /not empty/);
      await catalog.dropTable({ namespace: ['db', 'sub'], name: 't2' }, true);
      assert.equal(await catalog.tableExists({ namespace: ['db', 'sub'], name: 't2' }), false);
    });

    it('commits are compare-and-swap: a stale requirement fails as a retriable conflict', async () => {
      const t = await createTable(catalog, { namespace: ['db'], name: 'cas' }, { schema: EVENTS_SCHEMA });
      await t.append([{ id: 1 }]);
      const snap = t.metadata['current-snapshot-id'] as bigint;
      assert.ok(snap > 0n);
      await assert.rejects(
        catalog.commitTable(
          t.id,
          [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': null }],
          [{ action: 'set-properties', updates: { x: '1' } }],
        ),
        (e: unknown) => isTributaryError(e, 'CONFLICT') && e.retriable,
      );
      const r = await catalog.commitTable(
        t.id,
        [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': snap }],
        [{ action: 'set-properties', updates: { x: '1' } }],
      );
      assert.equal(r.metadata.properties.x, '1');
      assert.equal(r.metadata['current-snapshot-id'], snap, '64-bit id survives the round trip');
      assert.equal(r.metadata['metadata-log'].length, 2);
    });

    it('registers an existing table by its metadata file', async () => {
      const t = await createTable(catalog, { namespace: ['db'], name: 'orig' }, { schema: EVENTS_SCHEMA });
      await t.append([{ id: 7 }]);
      await catalog.createNamespace(['imported']);
      const reg = await catalog.registerTable({ namespace: ['imported'], name: 'copy' }, t.metadataLocation);
      assert.equal(reg.metadata['current-snapshot-id'], t.metadata['current-snapshot-id']);
      const copy = await loadTable(catalog, { namespace: ['imported'], name: 'copy' });
      assert.deepEqual(ids(await copy.rows()), [7]);
      await assert.rejects(
        catalog.registerTable({ namespace: ['imported'], name: 'copy' }, t.metadataLocation),
        (e: unknown) => isTributaryError(e, 'ALREADY_EXISTS'),
      );
      await assert.rejects(
        catalog.registerTable({ namespace: ['imported'], name: 'bad' }, '/nonexistent/v1.metadata.json'),
        (e: unknown) => isTributaryError(e, 'NOT_FOUND'),
      );
    });

    it('table operations run through the catalog, including concurrent appends and time travel', async () => {
      const t = await createTable(
        catalog,
        { namespace: ['db'], name: 'ops' },
        { schema: EVENTS_SCHEMA, partition: 'day(ts)' },
      );
      const t2 = await loadTable(catalog, t.id);
      await Promise.all([
        t.append([{ id: 1, ts: '2024-01-01T00:00:00Z' }]),
        t2.append([{ id: 2, ts: '2024-01-02T00:00:00Z' }]),
        t.append([{ id: 3 }]),
      ]);
      await t.refresh();
      assert.deepEqual(ids(await t.rows()), [1, 2, 3]);
      const first = t.history()[0]?.snapshotId as bigint;
      assert.equal((await t.rows({ snapshotId: first })).length, 1);
      await t.delete('id = 2');
      await t.evolveSchema([{ op: 'rename', name: 'name', newName: 'label' }]);
      await t.append(range(10, 20).map((id) => ({ id, label: `l${id}` })));
      assert.deepEqual(ids(await t.rows()), [1, 3, ...range(10, 20)]);
      assert.equal((await t.rows({ filter: "label = 'l15'" }))[0]?.id, 15n);
    });
  });
}

describe('the REST server with iceberg-js as the client', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: Awaited<ReturnType<typeof restServer>>;
  let client: IcebergRestCatalog;
  before(async () => {
    tmp = tempDir();
    server = await restServer(tmp.dir);
    client = new IcebergRestCatalog({ baseUrl: server.url, catalogName: 'tributary', auth: { type: 'none' } });
  });
  after(async () => {
    await server.app.close();
    await server.backing.close();
    tmp.cleanup();
  });

  it('namespaces and tables through the client', async () => {
    await client.createNamespace({ namespace: ['analytics'] }, { properties: { owner: 'me' } });
    assert.deepEqual(await client.listNamespaces(), [{ namespace: ['analytics'] }]);
    assert.deepEqual((await client.loadNamespaceMetadata({ namespace: ['analytics'] })).properties, { owner: 'me' });
    assert.equal(await client.namespaceExists({ namespace: ['analytics'] }), true);
    assert.equal(await client.namespaceExists({ namespace: ['nope'] }), false);
    const md = await client.createTable(
      { namespace: ['analytics'] },
      {
        name: 'events',
        schema: {
          type: 'struct',
          fields: [
            { id: 1, name: 'id', type: 'long', required: true },
            { id: 2, name: 'ts', type: 'timestamptz', required: false },
          ],
          'schema-id': 0,
        },
        'partition-spec': {
          'spec-id': 0,
          fields: [{ source_id: 2, field_id: 1000, name: 'ts_day', transform: 'day' }],
        },
        properties: { 'write.format.default': 'parquet' },
      },
    );
    assert.equal(md['format-version'], 2);
    assert.equal(md['partition-specs'][0]?.fields[0]?.transform ?? '', 'day');
    assert.deepEqual(await client.listTables({ namespace: ['analytics'] }), [
      { namespace: ['analytics'], name: 'events' },
    ]);
    assert.equal(await client.tableExists({ namespace: ['analytics'], name: 'events' }), true);
    const loaded = await client.loadTable({ namespace: ['analytics'], name: 'events' });
    assert.equal(loaded.location, md.location);
    const upd = await client.updateTable({ namespace: ['analytics'], name: 'events' }, { properties: { k: 'v' } });
    assert.equal(upd.metadata.properties.k, 'v');
    assert.match(upd['metadata-location'], /00001-.*\.metadata\.json$/);
    // data written by Tributary through its own catalog shows up for the REST client
    const t = await loadTable(server.backing, { namespace: ['analytics'], name: 'events' });
    await t.append([{ id: 1, ts: '2024-05-05T05:05:05Z' }]);
    const after = await client.loadTable({ namespace: ['analytics'], name: 'events' });
    assert.equal(after.snapshots?.length, 1);
  });

  it('answers with the spec status codes and error types', async () => {
    await assert.rejects(
      client.loadTable({ namespace: ['analytics'], name: 'missing' }),
      (e: { status: number; icebergType: string }) => e.status === 404 && e.icebergType === 'NoSuchTableException',
    );
    await assert.rejects(
      client.loadNamespaceMetadata({ namespace: ['missing'] }),
      (e: { status: number; icebergType: string }) => e.status === 404 && e.icebergType === 'NoSuchNamespaceException',
    );
    await assert.rejects(
      client.createNamespace({ namespace: ['analytics'] }),
      (e: { status: number; icebergType: string }) => e.status === 409 && e.icebergType === 'AlreadyExistsException',
    );
    await assert.rejects(
      client.dropNamespace({ namespace: ['analytics'] }),
      (e: { status: number }) => e.status === 409,
    );
    await assert.rejects(
      client.createTable({ namespace: ['analytics'] }, { name: '../escape', schema: { type: 'struct', fields: [] } }),
      (e: { status: number; icebergType: string }) => e.status === 400 && e.icebergType === 'BadRequestException',
    );
    const res = await fetch(`${server.url}/v1/config`);
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(((await res.json()) as { endpoints: unknown[] }).endpoints));
    const commit = await fetch(`${server.url}/v1/namespaces/analytics/tables/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        requirements: [{ type: 'assert-table-uuid', uuid: '00000000-0000-0000-0000-000000000000' }],
        updates: [],
      }),
    });
    assert.equal(commit.status, 409);
    assert.equal(((await commit.json()) as { error: { type: string } }).error.type, 'CommitFailedException');
    await client.dropTable({ namespace: ['analytics'], name: 'events' }, { purge: true });
    assert.equal(await client.tableExists({ namespace: ['analytics'], name: 'events' }), false);
    await client.dropNamespace({ namespace: ['analytics'] });
  });
});
