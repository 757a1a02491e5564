import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { TributaryError } from '../core/index.ts';
import { type DecodedRecord, decodeRecordBatches, type LogService, type TopicDescription } from '../log/index.ts';
import { parseInput, sendJsonError } from './http-errors.ts';

export interface TopicsRoutesOptions {
  log: LogService;
  /** How often the throughput sampler reads high watermarks (default 1000 ms). */
  sampleIntervalMs?: number;
  /** How many samples it keeps (default 600: ten minutes at one a second). */
  maxSamples?: number;
}

/** One sampler tick: totals at `time` and the rate since the previous tick. */
export interface ThroughputSample {
  time: number;
  /** Sum of high watermarks over all topics (messages ever written). */
  messages: number;
  messagesPerSecond: number;
  /** Messages per second per topic (topics that exist at both ticks). */
  topics: Record<string, number>;
  /** Total lag per consumer group. */
  lag: Record<string, number>;
}

// Kafka's legal topic names: no "/", so a name can never address a path outside the log directory.
const topicName = z
  .string()
  .min(1, 'expected a non-empty topic name')
  .max(249, 'expected at most 249 characters')
  .regex(/^[A-Za-z0-9._-]+$/, 'expected only ASCII letters, digits, ".", "_" and "-"')
  .refine((s) => s !== '.' && s !== '..', 'cannot be "." or ".."');

const intString = (what: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `expected ${what} as a non-negative integer`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `expected ${what} between ${min} and ${max}`);

const messagesQuery = z.strictObject({
  partition: intString('a partition number', 0, 1_000_000).default(0),
  offset: z
    .string()
    .regex(/^\d+$/, 'expected an offset as a non-negative integer')
    .transform((s) => BigInt(s))
    .optional(),
  limit: intString('a limit', 1, 1000).default(50),
});

/** Offsets as JSON numbers while they are exact, strings beyond 2^53. */
function num(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

function topicSummary(t: TopicDescription) {
  let messages = 0n;
  let size = 0;
  for (const p of t.partitions) {
    messages += p.highWatermark - p.logStartOffset;
    size += p.sizeBytes;
  }
  return {
    name: t.name,
    internal: t.internal,
    partitions: t.partitions.length,
    messages: num(messages),
    sizeBytes: size,
    offsets: t.partitions.map((p) => ({
      partition: p.partition,
      logStartOffset: num(p.logStartOffset),
      highWatermark: num(p.highWatermark),
    })),
  };
}

/** Text when the bytes are valid UTF-8 without control characters, else base64 (binary keys, Avro, ...). */
function showBytes(b: Buffer | null): { text: string } | { base64: string } | null {
  if (b === null) return null;
  const s = b.toString('utf8');
  if (!s.includes('\uFFFD') && !/[\u0000-\u0008\u000e-\u001f]/.test(s)) return { text: s };
  return { base64: b.toString('base64') };
}

async function groupLag(log: LogService, groupId: string) {
  const committed = await log.fetchOffsets(groupId);
  const partitions = committed
    .filter((o) => o.offset >= 0n)
    .map((o) => {
      const p = log.describeTopic(o.topic)?.partitions.find((x) => x.partition === o.partition);
      const end = p?.highWatermark ?? o.offset;
      const lag = end > o.offset ? end - o.offset : 0n;
      return { topic: o.topic, partition: o.partition, offset: num(o.offset), highWatermark: num(end), lag: num(lag) };
    });
  const lag = partitions.reduce((s, p) => s + Number(p.lag), 0);
  return { partitions, lag };
}

/**
 * The console's view of the log: topics, partitions, messages, consumer groups and an overview with
 * throughput over time. Register with `app.register(topicsRoutes, { log })`; routes live under /api/v1.
 */
export async function topicsRoutes(app: FastifyInstance, opts: TopicsRoutesOptions): Promise<void> {
  const { log } = opts;
  const intervalMs = opts.sampleIntervalMs ?? 1000;
  const maxSamples = opts.maxSamples ?? 600;

  app.setErrorHandler(sendJsonError);

  const samples: ThroughputSample[] = [];
  let lastEnds = new Map<string, number>(); // per topic: sum of high watermarks at the previous tick
  let sampling = false;
  const sample = async () => {
    if (sampling) return; // a slow tick must not pile up behind the next
    sampling = true;
    try {
      let messages = 0;
      const ends = new Map<string, number>();
      for (const t of log.listTopics()) {
        let end = 0;
        for (const p of t.partitions) end += Number(p.highWatermark);
        ends.set(t.name, end);
        messages += end;
      }
      const lag: Record<string, number> = {};
      for (const g of log.listGroups()) lag[g.groupId] = (await groupLag(log, g.groupId)).lag;
      const time = Date.now();
      const prev = samples.at(-1);
      const messagesPerSecond =
        prev && time > prev.time ? Math.max(0, ((messages - prev.messages) * 1000) / (time - prev.time)) : 0;
      const topics: Record<string, number> = {};
      if (prev && time > prev.time)
        for (const [name, end] of ends) {
          const before = lastEnds.get(name);
          if (before !== undefined) topics[name] = Math.max(0, ((end - before) * 1000) / (time - prev.time));
        }
      lastEnds = ends;
      samples.push({ time, messages, messagesPerSecond, topics, lag });
      if (samples.length > maxSamples) samples.splice(0, samples.length - maxSamples);
    } catch {
      // the log may be closing; the next tick tries again
    } finally {
      sampling = false;
    }
  };
  await sample();
  const timer = setInterval(() => void sample(), intervalMs);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));

  const describe = (raw: unknown): TopicDescription => {
    const name = parseInput(topicName, raw, 'name');
    const t = log.describeTopic(name);
    if (!t) throw new TributaryError('NOT_FOUND', `topic ${JSON.stringify(name)} does not exist`, { field: 'name' });
    return t;
  };

  app.get('/api/v1/topics', async () => ({ topics: log.listTopics().map(topicSummary) }));

  const describeRoute = (raw: string) => {
    const t = describe(raw);
    return {
      name: t.name,
      topicId: t.topicId,
      internal: t.internal,
      config: t.config,
      overrides: t.overrides ?? {},
      partitions: t.partitions.map((p) => ({
        partition: p.partition,
        logStartOffset: num(p.logStartOffset),
        highWatermark: num(p.highWatermark),
        lastStableOffset: num(p.lastStableOffset),
        messages: num(p.highWatermark - p.logStartOffset),
        sizeBytes: p.sizeBytes,
        segments: p.segments,
      })),
    };
  };

  const messagesRoute = async (raw: string, query: unknown) => {
    const t = describe(raw);
    const q = parseInput(messagesQuery, query, 'query');
    const p = t.partitions.find((x) => x.partition === q.partition);
    if (!p)
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `query.partition: expected a partition of ${t.name} between 0 and ${t.partitions.length - 1}, got ${q.partition}`,
        { field: 'query.partition' },
      );
    // Without an offset, show the newest `limit` messages.
    const requested = q.offset ?? p.highWatermark - BigInt(q.limit);
    const start = requested < p.logStartOffset ? p.logStartOffset : requested;
    const messages: ReturnType<typeof showRecord>[] = [];
    let next = start;
    while (messages.length < q.limit && next < p.highWatermark) {
      const r = await log.read(t.name, p.partition, next, { maxBytes: 1024 * 1024, isolation: 'read_uncommitted' });
      const batches = decodeRecordBatches(r.records);
      if (batches.length === 0) break;
      for (const b of batches) {
        const last = b.baseOffset + BigInt(b.lastOffsetDelta);
        if (!b.isControl)
          for (const rec of b.records) {
            if (rec.offset >= next && messages.length < q.limit) messages.push(showRecord(rec, b.timestampType));
          }
        if (last + 1n > next) next = last + 1n;
      }
    }
    return {
      topic: t.name,
      partition: p.partition,
      logStartOffset: num(p.logStartOffset),
      highWatermark: num(p.highWatermark),
      offset: num(start),
      // where the next page starts: after the last message shown, or where reading stopped
      nextOffset: num(
        messages.length === q.limit ? BigInt(messages.at(-1)!.offset) + 1n : minBig(next, p.highWatermark),
      ),
      messages,
    };
  };

  // A wildcard rather than ":name": the router caps parameters at 100 characters, Kafka names go to 249.
  app.get<{ Params: { '*': string }; Querystring: Record<string, string> }>('/api/v1/topics/*', async (req, reply) => {
    const rest = req.params['*'];
    const slash = rest.indexOf('/');
    const name = slash < 0 ? rest : rest.slice(0, slash);
    parseInput(topicName, name, 'name'); // before routing, so "../x" is a bad name rather than an unknown route
    if (slash < 0) return describeRoute(name);
    if (rest.slice(slash) === '/messages') return messagesRoute(name, req.query);
    return reply.code(404).send({ error: 'NOT_FOUND', message: `no route GET /api/v1/topics/${rest}` });
  });

  app.get('/api/v1/groups', async () => {
    const groups = [];
    for (const g of log.listGroups()) {
      const d = log.describeGroup(g.groupId);
      const { partitions, lag } = await groupLag(log, g.groupId);
      groups.push({
        groupId: g.groupId,
        state: d.state,
        protocolType: d.protocolType,
        protocol: d.protocol,
        members: d.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
        })),
        lag,
        offsets: partitions,
      });
    }
    return { groups };
  });

  app.get('/api/v1/overview', async () => {
    const topics = log.listTopics();
    let messages = 0n;
    let bytes = 0;
    let partitions = 0;
    for (const t of topics)
      for (const p of t.partitions) {
        messages += p.highWatermark - p.logStartOffset;
        bytes += p.sizeBytes;
        partitions++;
      }
    return {
      topics: topics.length,
      partitions,
      messages: num(messages),
      bytes,
      groups: log.listGroups().length,
      sampleIntervalMs: intervalMs,
      throughput: samples.map((s) => ({ time: s.time, messagesPerSecond: s.messagesPerSecond, topics: s.topics })),
      lag: samples.map((s) => ({ time: s.time, groups: s.lag })),
    };
  });
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function showRecord(rec: DecodedRecord, timestampType: string) {
  return {
    offset: num(rec.offset),
    timestamp: num(rec.timestamp),
    timestampType,
    key: showBytes(rec.key),
    value: showBytes(rec.value),
    headers: rec.headers.map(([k, v]) => ({ key: k, value: showBytes(v) })),
  };
}
