import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type EnrichmentServices, seedJob, type WindowStats } from '../../src/streams/examples/seed-job.ts';
import { Serdes, TopologyTestDriver, type Windowed } from '../../src/streams/index.ts';

const S = Serdes.String();
const J = Serdes.JSON<unknown>();
const MIN = 60_000;

const services: EnrichmentServices = {
  async geolocate(ip, signal) {
    if (ip === 'slow')
      return new Promise((_r, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    return { country: ip.startsWith('1.') ? 'FR' : 'DE', city: 'x' };
  },
  async profile(userId) {
    if (userId === 'ghost') throw new Error('no profile');
    return { tier: 'gold' };
  },
  async session(userId) {
    return { sessionId: `s-${userId}` };
  },
};

test('seed job: validate, enrich with timeout fallback, re-key, 5-minute windows with final stats', async () => {
  const d = new TopologyTestDriver(seedJob(services, { enrichTimeoutMs: 30 }));
  const input = d.createInputTopic('events', S, J);
  const ev = (id: string, userId: string, type: string, amount: number, ip?: string) => ({
    eventId: id,
    userId,
    type,
    amount,
    ...(ip === undefined ? {} : { ip }),
  });
  input.pipeInput('e1', ev('e1', 'ann', 'click', 10, '1.1.1.1'), 0);
  input.pipeInput('e2', ev('e2', 'bob', 'buy', 30, '1.2.2.2'), MIN);
  input.pipeInput('e3', ev('e3', 'ann', 'click', 5, '1.3.3.3'), 2 * MIN);
  input.pipeInput('e4', ev('e4', 'cat', 'click', 7, '2.2.2.2'), 3 * MIN);
  input.pipeInput('e5', ev('e5', 'dan', 'buy', 100, 'slow'), 4 * MIN); // enrichment times out: minimal event
  input.pipeInput('e6', ev('e6', 'ghost', 'view', 1, '1.9.9.9'), 4 * MIN); // a lookup fails: minimal event
  input.pipeInput('bad', { eventId: 'bad', amount: 'NaN' }, 4 * MIN);
  input.pipeInput('e7', ev('e7', 'eve', 'click', 2, '1.1.1.1'), 11 * MIN); // closes [0, 5 min) after grace
  await d.settle();
  assert.deepEqual(d.createOutputTopic('events-invalid', S, J).readValuesToList(), [{ eventId: 'bad', amount: 'NaN' }]);
  const stats = d
    .createOutputTopic('event-stats', Serdes.Windowed(S), Serdes.JSON<WindowStats>())
    .readRecordsToList()
    .map((r) => r.value as WindowStats);
  const byCountry = Object.fromEntries(stats.map((s) => [s.country, s]));
  assert.deepEqual(Object.keys(byCountry).sort(), ['DE', 'FR', 'unknown']);
  assert.deepEqual(byCountry.FR, {
    country: 'FR',
    windowStart: 0,
    windowEnd: 5 * MIN,
    count: 3,
    total: 45,
    average: 15,
    min: 5,
    max: 30,
    distinctUsers: 2,
    eventTypes: { click: 2, buy: 1 },
  });
  assert.equal(byCountry.DE?.count, 1);
  assert.equal(byCountry.unknown?.count, 2);
  assert.deepEqual(byCountry.unknown?.eventTypes, { buy: 1, view: 1 });
  // The window store keeps 24 h of windows for interactive queries.
  const store = d.getWindowStore<string, { count: number }>('country-stats');
  assert.equal(store.fetch('FR', 10 * MIN)?.count, 1);
  const typed: Windowed<string> | null = null;
  void typed;
});
