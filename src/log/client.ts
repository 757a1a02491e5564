import { TributaryError } from '../core/index.ts';
import type {
  Admin,
  Consumer,
  ConsumerOptions,
  LogClient,
  LogService,
  Producer,
  ProducerOptions,
  TopicConfig,
  TopicPartition,
} from './api.ts';
import { EmbeddedConsumer } from './client-consumer.ts';
import { EmbeddedProducer } from './client-producer.ts';

export interface EmbeddedClientOptions {
  /** Sent as the client id of group members. */
  clientId?: string;
}

type MaybePromise<T> = T | Promise<T>;

/**
 * What the admin needs of a log. The metadata reads may answer later: over a port (port-log.ts) they are
 * calls to the thread that owns the log.
 */
export interface AdminLog
  extends Pick<LogService, 'createTopic' | 'deleteTopic' | 'createPartitions' | 'fetchOffsets'> {
  listTopics(): MaybePromise<ReturnType<LogService['listTopics']>>;
  describeTopic(name: string): MaybePromise<ReturnType<LogService['describeTopic']>>;
  listGroups(): MaybePromise<ReturnType<LogService['listGroups']>>;
}

/** The admin operations over a LogService. */
class EmbeddedAdmin implements Admin {
  readonly #log: AdminLog;
  constructor(log: AdminLog) {
    this.#log = log;
  }
  async createTopic(name: string, options: { partitions: number; config?: TopicConfig }): Promise<void> {
    await this.#log.createTopic(name, options);
  }
  deleteTopic(name: string): Promise<void> {
    return this.#log.deleteTopic(name);
  }
  async listTopics(): Promise<string[]> {
    return (await this.#log.listTopics()).map((t) => t.name);
  }
  async describeTopic(
    name: string,
  ): Promise<{ name: string; partitions: { partition: number; highWatermark: bigint; logStartOffset: bigint }[] }> {
    const d = await this.#log.describeTopic(name);
    if (!d) {
      throw new TributaryError('NOT_FOUND', `topic ${JSON.stringify(name)} does not exist`, {
        field: 'name',
        kafkaErrorCode: 3,
      });
    }
    return {
      name: d.name,
      partitions: d.partitions.map((p) => ({
        partition: p.partition,
        highWatermark: p.highWatermark,
        logStartOffset: p.logStartOffset,
      })),
    };
  }
  createPartitions(name: string, totalCount: number): Promise<void> {
    return this.#log.createPartitions(name, totalCount);
  }
  async listGroups(): Promise<string[]> {
    return (await this.#log.listGroups()).map((g) => g.groupId);
  }
  async fetchOffsets(groupId: string): Promise<(TopicPartition & { offset: bigint })[]> {
    const got = await this.#log.fetchOffsets(groupId);
    return got.filter((o) => o.offset >= 0n).map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset }));
  }
  async close(): Promise<void> {}
}

/**
 * Producers, consumers and admins over a log in this process (no TCP). Closing the client closes what it
 * created, not the log.
 */
export function embeddedClient(log: LogService, options: EmbeddedClientOptions = {}): LogClient {
  return clientOver(log, log, options);
}

/** Producers and consumers over `log`, admins over `adminLog`; closing the client closes what it created. */
export function clientOver(log: LogService, adminLog: AdminLog, options: EmbeddedClientOptions = {}): LogClient {
  const open = new Set<{ close(): Promise<void> }>();
  const track = <T extends { close(): Promise<void> }>(c: T): T => {
    open.add(c);
    const close = c.close.bind(c);
    c.close = async () => {
      open.delete(c);
      await close();
    };
    return c;
  };
  return {
    producer(producerOptions?: ProducerOptions): Producer {
      return track(new EmbeddedProducer(log, producerOptions));
    },
    consumer(consumerOptions?: ConsumerOptions): Consumer {
      return track(new EmbeddedConsumer(log, { clientId: options.clientId, ...consumerOptions }));
    },
    admin(): Admin {
      return track(new EmbeddedAdmin(adminLog));
    },
    async close(): Promise<void> {
      await Promise.allSettled([...open].map((c) => c.close()));
    },
  };
}
