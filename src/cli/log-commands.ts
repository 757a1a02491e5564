import readline from 'node:readline';
import type { Command } from 'commander';
import { dataLayout, TributaryError } from '../core/index.ts';
import { embeddedClient, type LogClient, openLog } from '../log/index.ts';

interface ConnectionOptions {
  dataDir: string;
  bootstrapServer?: string;
}

/** A client over the data directory (no server needed), or over a running broker with --bootstrap-server. */
async function connect(options: ConnectionOptions): Promise<LogClient> {
  if (options.bootstrapServer) {
    const { remoteClient } = await import('../kafka/index.ts');
    return remoteClient({ bootstrapBrokers: options.bootstrapServer.split(','), clientId: 'tributary-cli' });
  }
  const log = await openLog({ dataDir: dataLayout(options.dataDir).log, cleanerIntervalMs: 0 });
  const client = embeddedClient(log);
  return {
    producer: (o) => client.producer(o),
    consumer: (o) => client.consumer(o),
    admin: () => client.admin(),
    async close() {
      await client.close();
      await log.close();
    },
  };
}

function withConnection(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'data directory of the embedded log', './tributary-data')
    .option('--bootstrap-server <host:port>', 'talk to a running broker instead of opening the data directory');
}

function parseConfigPairs(pairs: string[]): { name: string; value: string }[] {
  return pairs.map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new TributaryError('INVALID_ARGUMENT', `--config: expected KEY=VALUE, got ${JSON.stringify(pair)}`);
    return { name: pair.slice(0, eq), value: pair.slice(eq + 1) };
  });
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerLogCommands(program: Command): void {
  const topics = program.command('topics').description('create, list, describe and delete topics (kafka-topics)');

  withConnection(topics.command('create <topic>'))
    .description('create a topic')
    .option('--partitions <n>', 'number of partitions', '1')
    .option('--config <key=value>', 'a topic config, e.g. cleanup.policy=compact (repeatable)', collect, [])
    .action(async (topic: string, opts: ConnectionOptions & { partitions: string; config: string[] }) => {
      const partitions = Number(opts.partitions);
      if (!Number.isInteger(partitions) || partitions < 1) {
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `--partitions: expected a positive integer, got ${opts.partitions}`,
        );
      }
      const { parseTopicConfigs } = await import('../kafka/index.ts');
      const config = parseTopicConfigs(parseConfigPairs(opts.config));
      await using client = disposable(await connect(opts));
      const admin = client.value.admin();
      await admin.createTopic(topic, { partitions, config });
      console.log(`Created topic ${topic}.`);
    });

  withConnection(topics.command('list'))
    .description('list topics')
    .action(async (opts: ConnectionOptions) => {
      await using client = disposable(await connect(opts));
      for (const name of (await client.value.admin().listTopics()).sort()) console.log(name);
    });

  withConnection(topics.command('describe <topic>'))
    .description('partitions and offsets of a topic')
    .action(async (topic: string, opts: ConnectionOptions) => {
      await using client = disposable(await connect(opts));
      const description = await client.value.admin().describeTopic(topic);
      console.log(`Topic: ${description.name}\tPartitionCount: ${description.partitions.length}`);
      for (const p of description.partitions) {
        console.log(
          `\tTopic: ${topic}\tPartition: ${p.partition}\tLogStartOffset: ${p.logStartOffset}\tHighWatermark: ${p.highWatermark}`,
        );
      }
    });

  withConnection(topics.command('delete <topic>'))
    .description('delete a topic and its data')
    .action(async (topic: string, opts: ConnectionOptions) => {
      await using client = disposable(await connect(opts));
      await client.value.admin().deleteTopic(topic);
      console.log(`Deleted topic ${topic}.`);
    });

  withConnection(program.command('produce <topic>'))
    .description('produce one record per stdin line (kafka-console-producer)')
    .option('--key-separator [sep]', 'lines are KEY<sep>VALUE (default separator: a tab)')
    .action(async (topic: string, opts: ConnectionOptions & { keySeparator?: string | true }) => {
      const separator = opts.keySeparator === true ? '\t' : opts.keySeparator;
      await using client = disposable(await connect(opts));
      // As Kafka with auto.create.topics.enable: the first record to a new topic creates it.
      const admin = client.value.admin();
      if (!(await admin.listTopics()).includes(topic)) await admin.createTopic(topic, { partitions: 1 });
      const producer = client.value.producer({ lingerMs: 5 });
      const lines = readline.createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
      let pending: Promise<unknown>[] = [];
      let batch: { topic: string; key: string | null; value: string }[] = [];
      let count = 0;
      for await (const line of lines) {
        let key: string | null = null;
        let value = line;
        if (separator !== undefined) {
          const at = line.indexOf(separator);
          if (at < 0) {
            throw new TributaryError(
              'INVALID_ARGUMENT',
              `line ${count + 1}: expected KEY${JSON.stringify(separator)}VALUE`,
            );
          }
          key = line.slice(0, at);
          value = line.slice(at + separator.length);
        }
        batch.push({ topic, key, value });
        count++;
        if (batch.length >= 1000) {
          pending.push(producer.send(batch));
          batch = [];
          if (pending.length >= 16) {
            await Promise.all(pending);
            pending = [];
          }
        }
      }
      if (batch.length > 0) pending.push(producer.send(batch));
      await Promise.all(pending);
      await producer.close();
      console.error(`Produced ${count} records to ${topic}.`);
    });

  withConnection(program.command('consume <topic>'))
    .description('print records of a topic, one value per line (kafka-console-consumer)')
    .option('--group <group>', 'consume as a member of this consumer group and commit offsets')
    .option('--from-beginning', 'start at the earliest offset when there is no committed offset')
    .option('--max <n>', 'stop after this many records')
    .option('--print-key', 'print KEY<tab>VALUE')
    .option('--timeout-ms <ms>', 'stop after this long without records (default: run until Ctrl-C)')
    .action(
      async (
        topic: string,
        opts: ConnectionOptions & {
          group?: string;
          fromBeginning?: boolean;
          max?: string;
          printKey?: boolean;
          timeoutMs?: string;
        },
      ) => {
        const max = opts.max === undefined ? Number.POSITIVE_INFINITY : Number(opts.max);
        const idleLimit = opts.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Number(opts.timeoutMs);
        await using client = disposable(await connect(opts));
        const consumer = client.value.consumer({
          ...(opts.group ? { groupId: opts.group } : {}),
          autoOffsetReset: opts.fromBeginning ? 'earliest' : 'latest',
        });
        if (opts.group) {
          await consumer.subscribe([topic]);
        } else {
          const description = await client.value.admin().describeTopic(topic);
          consumer.assign(description.partitions.map((p) => ({ topic, partition: p.partition })));
        }
        let stop = false;
        const onSignal = () => {
          stop = true;
        };
        process.once('SIGINT', onSignal);
        let seen = 0;
        let idleSince = Date.now();
        try {
          while (!stop && seen < max && Date.now() - idleSince < idleLimit) {
            const records = await consumer.poll(500);
            if (records.length > 0) idleSince = Date.now();
            const out: string[] = [];
            // Commit only what was printed, so --max leaves the rest for the next consumer.
            const next = new Map<string, { topic: string; partition: number; offset: bigint }>();
            for (const record of records) {
              if (seen >= max) break;
              const value = record.value?.toString('utf8') ?? '';
              out.push(opts.printKey ? `${record.key?.toString('utf8') ?? ''}\t${value}` : value);
              next.set(`${record.topic}:${record.partition}`, {
                topic: record.topic,
                partition: record.partition,
                offset: record.offset + 1n,
              });
              seen++;
            }
            if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
            if (opts.group && next.size > 0) await consumer.commit([...next.values()]);
          }
        } finally {
          process.off('SIGINT', onSignal);
          await consumer.close();
        }
        console.error(`Processed a total of ${seen} messages`);
      },
    );
}

function disposable(client: LogClient): { value: LogClient; [Symbol.asyncDispose](): Promise<void> } {
  return { value: client, [Symbol.asyncDispose]: () => client.close() };
}
