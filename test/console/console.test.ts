import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createTable } from '../../src/lake/index.ts';
import { embeddedClient } from '../../src/log/index.ts';
import { type Platform, startPlatform } from '../../src/server/index.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM)
  ? false
  : `needs Chromium at ${CHROMIUM} (install the Debian package "chromium": apt-get install chromium)`;

type Browser = import('playwright-core').Browser;
type Page = import('playwright-core').Page;

let dir: string;
let shots: string;
let platform: Platform;
let browser: Browser;
let base: string;

async function waitTask(id: string): Promise<string> {
  for (;;) {
    const r = (await (await fetch(`${base}/druid/indexer/v1/task/${encodeURIComponent(id)}/status`)).json()) as {
      status: { status: string; errorMsg?: string };
    };
    if (r.status.status !== 'RUNNING') return r.status.status + (r.status.errorMsg ? `: ${r.status.errorMsg}` : '');
    await new Promise((res) => setTimeout(res, 50));
  }
}

before(async () => {
  if (skip) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-console-'));
  shots = process.env.CONSOLE_SCREENSHOTS ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-console-shots-'));
  platform = await startPlatform({ dataDir: path.join(dir, 'data'), kafkaPort: 0, httpPort: 0 });
  base = `http://127.0.0.1:${platform.httpPort}`;

  // a topic with JSON messages, and a consumer group that is behind
  await platform.log.createTopic('orders', { partitions: 2 });
  await platform.log.createTopic('fraud-alerts', { partitions: 1 });
  const client = embeddedClient(platform.log);
  const producer = client.producer();
  await producer.send(
    Array.from({ length: 40 }, (_, i) => ({
      topic: 'orders',
      key: `user-${i % 7}`,
      value: JSON.stringify({ order: i, user: `user-${i % 7}`, amount: 10 + i }),
      headers: [['source', Buffer.from('console-test')]] as [string, Buffer][],
    })),
  );
  // what a CEP job writes: one JSON alert per match
  await producer.send([
    {
      topic: 'fraud-alerts',
      key: 'user-3',
      value: JSON.stringify({ pattern: 'login-big-purchase-logout', user: 'user-3', amount: 1500 }),
    },
  ]);
  await producer.close();
  const consumer = client.consumer({ groupId: 'billing' });
  await consumer.commit([{ topic: 'orders', partition: 0, offset: 3n }]);
  await consumer.close();

  // a datasource from an inline batch ingestion task
  const rows = [
    { ts: '2024-01-01T00:00:00Z', country: 'FR', clicks: 3 },
    { ts: '2024-01-01T01:00:00Z', country: 'DE', clicks: 5 },
    { ts: '2024-01-01T02:00:00Z', country: 'FR', clicks: 4 },
    { ts: '2024-01-02T00:00:00Z', country: 'US', clicks: 9 },
  ];
  const task = await fetch(`${base}/druid/indexer/v1/task`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      type: 'index_parallel',
      spec: {
        dataSchema: {
          dataSource: 'clicks',
          timestampSpec: { column: 'ts', format: 'iso' },
          dimensionsSpec: { dimensions: ['country'] },
          metricsSpec: [{ type: 'longSum', name: 'clicks', fieldName: 'clicks' }],
          granularitySpec: { rollup: false, queryGranularity: 'none', segmentGranularity: 'day' },
        },
        ioConfig: {
          type: 'index_parallel',
          inputSource: { type: 'inline', data: rows.map((r) => JSON.stringify(r)).join('\n') },
          inputFormat: { type: 'json' },
        },
      },
    }),
  });
  const { task: taskId } = (await task.json()) as { task: string };
  assert.equal(await waitTask(taskId), 'SUCCESS');

  // a lake table with two snapshots
  await platform.catalog.createNamespace(['shop']);
  const t = await createTable(
    platform.catalog,
    { namespace: ['shop'], name: 'customers' },
    {
      schema: {
        fields: [
          { id: 1, name: 'id', required: true, type: 'long' },
          { id: 2, name: 'name', required: false, type: 'string' },
          { id: 3, name: 'signed_up', required: false, type: 'date' },
        ],
      },
      partition: 'month(signed_up)',
    },
  );
  await t.append([
    { id: 1, name: 'Ada', signed_up: '2024-01-05' },
    { id: 2, name: 'Grace', signed_up: '2024-02-11' },
  ]);
  await t.append([{ id: 3, name: 'Linus', signed_up: '2024-03-01' }]);

  // a pipeline run: lake table -> quality check -> a new lake table, with OpenLineage events
  const run = await fetch(`${base}/api/v1/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      pipeline: {
        name: 'customers_daily',
        stages: [
          { id: 'load', type: 'ingest', source: { kind: 'iceberg', table: 'shop.customers' } },
          { id: 'check', type: 'quality', inputs: ['load'], checks: [{ type: 'not_null', column: 'name' }] },
          { id: 'save', type: 'output', inputs: ['load'], target: { kind: 'iceberg', table: 'shop.customers_clean' } },
        ],
      },
    }),
  });
  const runBody = (await run.json()) as { run: { status: string; error: string | null } };
  assert.equal(runBody.run.status, 'succeeded', String(runBody.run.error));

  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  await platform?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  if (shots && !process.env.CONSOLE_SCREENSHOTS) fs.rmSync(shots, { recursive: true, force: true });
});

/** Opens a page of the console and collects console errors, page errors and failed requests. */
async function open(hash: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  page.on('response', (r) => {
    // a 404 on a probed, not-yet-mounted endpoint is expected; anything 5xx is a bug
    if (r.status() >= 500) errors.push(`http ${r.status()} ${r.url()}`);
  });
  await page.goto(`${base}/${hash}`);
  return { page, errors };
}

/** Saves a screenshot and checks the page logged no errors but the `allowed` ones. */
async function done(page: Page, name: string, errors: string[], allowed?: RegExp) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const unexpected = errors.filter((e) => !allowed?.test(e));
  assert.deepEqual(unexpected, [], `${name}: no console errors`);
  await page.close();
}

test('overview shows totals, a throughput chart and the lagging group', { skip }, async () => {
  const { page, errors } = await open('#/overview');
  await page.locator('.stat', { hasText: 'messages' }).first().waitFor();
  assert.equal(await page.locator('.stat', { hasText: 'topics' }).locator('.stat-value').textContent(), '2');
  assert.equal(await page.locator('.stat', { hasText: /^41/ }).count(), 1);
  await page.locator('svg.chart[aria-label="messages per second"]').waitFor();
  // a flat line has an empty bounding box, which Playwright calls hidden: wait for it to exist
  await page.locator('svg.chart[aria-label="consumer lag"] path.line').waitFor({ state: 'attached' });
  assert.equal(await page.locator('.legend', { hasText: 'billing' }).count(), 1);
  await page.locator('td', { hasText: 'billing' }).waitFor();
  await done(page, 'overview', errors);
});

test('topics: list, partitions, and browsing messages', { skip }, async () => {
  const { page, errors } = await open('#/topics');
  await page.locator('a', { hasText: 'orders' }).click();
  await page.locator('h1', { hasText: 'orders' }).waitFor();
  await page.locator('th', { hasText: 'high watermark' }).waitFor();
  await page.locator('table.messages tbody tr').first().waitFor();
  const values = await page.locator('table.messages tbody tr td:nth-child(4)').allTextContents();
  assert.ok(values.length > 0);
  for (const v of values) assert.match(v, /^\{"order":\d+,"user":"user-\d","amount":\d+\}$/);
  assert.ok(await page.locator('.pill', { hasText: 'source=console-test' }).count());
  // go to partition 1 from offset 0
  await page.selectOption('select[aria-label=partition]', '1');
  await page.fill('input[aria-label=offset]', '0');
  await page.getByRole('button', { name: 'Load' }).click();
  await page.locator('table.messages tbody tr td.num', { hasText: /^0$/ }).first().waitFor();
  await page.locator('td', { hasText: 'billing' }).waitFor();
  await done(page, 'topics', errors);
});

test('tables: schema, partition spec, snapshots and a time-travel preview', { skip }, async () => {
  const { page, errors } = await open('#/tables');
  // the pipeline wrote shop.customers_clean too
  await page.locator('a', { hasText: 'customers_clean' }).waitFor();
  await page.locator('a', { hasText: /^customers$/ }).click();
  await page.locator('h1', { hasText: 'shop.customers' }).waitFor();
  await page.locator('td', { hasText: 'signed_up' }).first().waitFor();
  await page.locator('td', { hasText: /^month$/ }).waitFor();
  const snapshotRows = page.locator('section.card', { hasText: 'Snapshots (2)' }).locator('tbody tr');
  assert.equal(await snapshotRows.count(), 2);
  // the newest snapshot is previewed first: 3 rows
  await page.locator('table.preview td', { hasText: 'Linus' }).waitFor();
  assert.equal(await page.locator('table.preview tbody tr').count(), 3);
  // time travel to the first snapshot: 2 rows, no Linus
  await snapshotRows.nth(1).click();
  await page.locator('.card', { hasText: 'first 2 rows' }).waitFor();
  assert.equal(await page.locator('table.preview tbody tr').count(), 2);
  assert.equal(await page.locator('table.preview td', { hasText: 'Linus' }).count(), 0);
  await done(page, 'tables', errors);
});

test('datasources: the query editor runs Druid SQL and draws a chart', { skip }, async () => {
  const { page, errors } = await open('#/datasources');
  await page.locator('td', { hasText: 'clicks' }).first().waitFor();
  await page.locator('.pill', { hasText: 'country' }).waitFor();
  await page.fill('#sql', 'SELECT country, SUM(clicks) AS clicks FROM "clicks" GROUP BY country ORDER BY clicks DESC');
  await page.click('#run-query');
  await page.locator('table.results tbody tr').first().waitFor();
  const rows = await page
    .locator('table.results tbody tr')
    .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
  assert.deepEqual(rows, [
    ['US', '9'],
    ['FR', '7'],
    ['DE', '5'],
  ]);
  const bars = page.locator('#chart svg rect.bar');
  assert.equal(await bars.count(), 3);
  const heights = await bars.evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('height'))));
  assert.ok(heights[0]! > heights[1]! && heights[1]! > heights[2]! && heights[2]! > 0, `bar heights ${heights}`);
  // a time series draws a line with points
  await page.fill(
    '#sql',
    'SELECT FLOOR(__time TO HOUR) AS hour, SUM(clicks) AS clicks FROM "clicks" GROUP BY 1 ORDER BY 1',
  );
  await page.click('#run-query');
  await page.locator('#chart svg circle.point').first().waitFor();
  assert.equal(await page.locator('#chart svg circle.point').count(), 4);
  await page.screenshot({ path: path.join(shots, 'datasources-timeseries.png'), fullPage: true });
  assert.deepEqual(errors, []);
  // a bad query shows the server's message; the browser logs the 400 response itself
  await page.fill('#sql', 'SELECT nope FROM "clicks"');
  await page.click('#run-query');
  await page.locator('#results .error', { hasText: /nope/ }).waitFor();
  await done(page, 'datasources', errors, /status of 400 \(Bad Request\)/);
});

test("pipelines: runs, a run's stage DAG, results, quality and lineage", { skip }, async () => {
  const { page, errors } = await open('#/pipelines');
  await page.locator('td a', { hasText: 'customers_daily' }).first().waitFor();
  await page.locator('.pill.status-succeeded').first().waitFor();
  await page.locator('section.card', { hasText: 'Recent runs' }).locator('tbody tr').first().click();
  await page.locator('section.card', { hasText: 'Stage results' }).waitFor();
  const stageIds = await page
    .locator('section.card', { hasText: 'Stage results' })
    .locator('tbody tr td:first-child')
    .allTextContents();
  assert.deepEqual(stageIds.sort(), ['check', 'load', 'save']);
  // the DAG: three stage nodes and two edges (load -> check, load -> save)
  const dag = page.locator('section.card', { hasText: 'Stages' }).first().locator('svg.graph');
  assert.equal(await dag.locator('g.node').count(), 3);
  assert.equal(await dag.locator('path.edge').count(), 2);
  assert.equal(await page.locator('.stat', { hasText: 'quality score' }).locator('.stat-value').textContent(), '1');
  const lineage = page.locator('section.card', { hasText: 'Lineage' }).locator('svg.graph');
  await lineage.locator('g.node', { hasText: 'shop.customers_clean' }).waitFor();
  await done(page, 'pipeline-run', errors);
});

test('lineage draws datasets and jobs from recorded OpenLineage events', { skip }, async () => {
  const { page, errors } = await open('#/lineage');
  const g = page.locator('main svg.graph');
  await g.locator('g.node', { hasText: 'shop.customers_clean' }).waitFor();
  assert.equal(await g.locator('g.node.job', { hasText: 'customers_daily' }).count(), 1);
  assert.ok((await g.locator('path.edge').count()) >= 2);
  // the browser logs a 404 while /api/v1/lineage is not mounted; the page falls back to run events
  await done(page, 'lineage', errors, /status of 404 \(Not Found\)/);
});

test('CEP alerts come from the CEP endpoint, or else from alert topics', { skip }, async () => {
  const { page, errors } = await open('#/cep');
  const fromTopic = page.locator('[data-source=topic]');
  const fromEndpoint = page.locator('main table, main p.muted:not(:has-text("Loading"))');
  await fromTopic.or(fromEndpoint).first().waitFor();
  if (await fromTopic.count()) {
    await fromTopic.locator('td', { hasText: 'login-big-purchase-logout' }).waitFor();
    assert.equal(await fromTopic.locator('td', { hasText: /^1500$/ }).count(), 1);
  }
  assert.equal(await page.locator('main .error').count(), 0, 'no error box');
  await done(page, 'cep', errors, /status of 404 \(Not Found\)/);
});

for (const [hash, title, what] of [['#/jobs', 'Jobs', 'Stream jobs']] as const) {
  test(`${title} loads live data or says it is not available yet`, { skip }, async () => {
    const { page, errors } = await open(hash);
    await page.locator('h1', { hasText: title }).waitFor();
    const notice = page.locator('.notice', { hasText: `${what}: not available yet` });
    const data = page.locator('main table, main svg.graph, main p.muted:not(:has-text("Loading"))');
    await notice.or(data).first().waitFor();
    assert.equal(await page.locator('main .error').count(), 0, 'no error box');
    // the browser logs a 404 for an endpoint the server does not mount yet
    await done(page, hash.slice(2), errors, /status of 404 \(Not Found\)/);
  });
}

test('with bearer tokens configured, the console asks for a token once and then loads', { skip }, async () => {
  const secured = await startPlatform({
    dataDir: path.join(dir, 'secured'),
    kafkaPort: 0,
    httpPort: 0,
    auth: { tokens: ['console-secret'] },
  });
  try {
    await secured.log.createTopic('guarded', { partitions: 1 });
    const page = await browser.newPage();
    const prompts: string[] = [];
    page.on('dialog', (dialog) => {
      prompts.push(dialog.message());
      void dialog.accept('console-secret');
    });
    await page.goto(`http://127.0.0.1:${secured.httpPort}/#/topics`);
    await page.locator('a', { hasText: 'guarded' }).waitFor();
    assert.equal(prompts.length, 1, 'asked once');
    assert.match(prompts[0]!, /access token/);
    // The token is kept: another page loads without asking again.
    await page.goto(`http://127.0.0.1:${secured.httpPort}/#/overview`);
    await page.locator('.stat', { hasText: 'topics' }).first().waitFor();
    assert.equal(prompts.length, 1);
    await page.close();
  } finally {
    await secured.close();
  }
});
