// One worker thread of a KafkaStreams with numThreads > 1 (see threads.ts): rebuilds the topology, runs one
// KafkaStreams instance in group mode (over the parent's log on a MessagePort, or a Kafka cluster), and reports
// state, metrics and progress.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { remoteClient } from '../kafka/index.ts';
import { connectLogPort, type LogClient } from '../log/index.ts';
import { KafkaStreams } from './runtime.ts';
import type { EventTimeConfig } from './task.ts';
import {
  EXIT_CODE_ASKED,
  type FromWorker,
  loadTopology,
  type StoreQuery,
  serializeError,
  type ToWorker,
  type WorkerInit,
} from './threads.ts';

if (parentPort === null) throw new Error('thread-worker.ts runs as a worker thread of KafkaStreams (numThreads > 1)');
const port: MessagePort = parentPort;
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);

let clockOffset = init.wallClockOffset;
let streams: KafkaStreams | undefined;
let client: LogClient | undefined;
let closing = false;

async function close(): Promise<void> {
  let error: unknown;
  try {
    await streams?.close();
    if (streams?.state === 'ERROR') error = streams.error;
  } catch (err) {
    error = err;
  }
  clearInterval(metricsTimer);
  await client?.close().catch(() => {});
  post({ type: 'closed', ...(error === undefined ? {} : { error: serializeError(error) }) });
  port.close();
}

function answer(q: StoreQuery): unknown {
  const s = streams as KafkaStreams;
  const store: Record<string, unknown> =
    q.kind === 'keyValue'
      ? (s.keyValueStore(q.store) as unknown as Record<string, unknown>)
      : q.kind === 'window'
        ? (s.windowStore(q.store) as unknown as Record<string, unknown>)
        : (s.sessionStore(q.store) as unknown as Record<string, unknown>);
  const fn = store[q.method];
  if (typeof fn !== 'function') throw new Error(`${q.kind} store has no method ${q.method}`);
  return (fn as (...a: unknown[]) => unknown)(...q.args);
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'clock':
      clockOffset = m.offset;
      break;
    case 'progress':
      post({ type: 'reply', id: m.id, value: streams?.progress() ?? { state: 'CREATED', positions: [], idle: false } });
      break;
    case 'query':
      try {
        post({ type: 'reply', id: m.id, value: answer(m.query) });
      } catch (err) {
        post({ type: 'reply', id: m.id, error: serializeError(err) });
      }
      break;
    case 'exit':
      // Asked by the parent to end without closing (the thread failed): from here no store transaction is open.
      process.exit(EXIT_CODE_ASKED);
      break;
    case 'close':
      if (!closing) {
        closing = true;
        void close();
      }
      break;
  }
});

const metricsTimer = setInterval(() => {
  if (streams !== undefined && streams.state !== 'CREATED') post({ type: 'metrics', metrics: streams.metrics() });
}, init.metricsIntervalMs);
metricsTimer.unref();

try {
  const clientId = `${init.config.applicationId}-${init.config.instanceId}`;
  client =
    init.logPort !== undefined
      ? await connectLogPort(init.logPort, { clientId })
      : remoteClient({ ...(init.remote as NonNullable<WorkerInit['remote']>), clientId });
  const topology = await loadTopology(init.source);
  const { eventTime, ...config } = init.config;
  streams = new KafkaStreams(topology, {
    ...config,
    ...(eventTime === undefined ? {} : { eventTime: eventTime as EventTimeConfig }),
    client,
    partitionAssignment: 'group',
    numThreads: 1,
    ...(clockOffset === undefined ? {} : { wallClock: () => Date.now() + (clockOffset ?? 0) }),
  });
  const s = streams;
  // The parent's handler decides (replace this thread or stop the client): this thread stops and reports.
  s.setUncaughtExceptionHandler((err) => {
    post({ type: 'error', error: serializeError(err) });
    return 'SHUTDOWN_CLIENT';
  });
  s.onStateChange((next) => post({ type: 'state', state: next, metrics: s.metrics() }));
  await s.start();
  post({ type: 'started' });
  post({ type: 'state', state: s.state, metrics: s.metrics() });
} catch (err) {
  post({ type: 'error', error: serializeError(err) });
  await client?.close().catch(() => {});
  clearInterval(metricsTimer);
  port.close();
}
