import { randomUUID } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { type DatasetInfo, type LineageSink, runEvent } from './lineage.ts';

/** What streaming lineage needs of a topology (src/streams' `Topology` has this shape). */
export interface TopologyShape {
  sourceTopics(): string[];
  readonly nodes: readonly { kind: string; sinkTopic?: string | undefined; internal?: boolean | undefined }[];
}

interface App {
  inputs: DatasetInfo[];
  outputs: DatasetInfo[];
  runId: string | undefined;
}

/**
 * OpenLineage events for streaming jobs: listens to the streams runtime's state changes
 * (`tributary:streams:state`) and emits START when an application starts running, COMPLETE when it
 * stops, FAIL when it fails; inputs are its source topics, outputs its sink topics.
 */
export class StreamingLineage {
  private readonly apps = new Map<string, App>();
  private readonly sinks: LineageSink[];
  private readonly pending = new Set<Promise<void>>();
  readonly errors: Error[] = [];
  private readonly onState = (msg: unknown): void =>
    this.handle(msg as { applicationId: string; state: string; previous: string; error?: unknown });

  constructor(sinks: LineageSink[]) {
    this.sinks = sinks;
    diagnostics.subscribe('tributary:streams:state', this.onState);
  }

  /** Registers an application's topology (call before starting it). */
  register(applicationId: string, topology: TopologyShape): void {
    const sinks = new Set<string>();
    for (const n of topology.nodes)
      if (n.kind === 'sink' && n.sinkTopic && !n.internal && !n.sinkTopic.includes('(')) sinks.add(n.sinkTopic);
    const internal = new Set(
      topology.nodes
        .filter((n) => n.internal)
        .flatMap((n) => ('topics' in n ? ((n as { topics?: string[] }).topics ?? []) : [])),
    );
    this.apps.set(applicationId, {
      inputs: topology.sourceTopics().map((t) => ({ id: `topic:${t}`, columns: [] })),
      outputs: [...sinks]
        .filter((t) => !internal.has(t) && !t.endsWith('-repartition'))
        .map((t) => ({ id: `topic:${t}`, columns: [] })),
      runId: undefined,
    });
  }

  private handle(msg: { applicationId: string; state: string; previous: string }): void {
    const app = this.apps.get(msg.applicationId);
    if (!app) return;
    let eventType: 'START' | 'COMPLETE' | 'FAIL' | undefined;
    if (msg.state === 'RUNNING' && app.runId === undefined) {
      app.runId = randomUUID();
      eventType = 'START';
    } else if (msg.state === 'ERROR' && app.runId) eventType = 'FAIL';
    else if (msg.state === 'NOT_RUNNING' && app.runId) eventType = 'COMPLETE';
    if (!eventType || !app.runId) return;
    const event = runEvent({
      eventType,
      runId: app.runId,
      job: msg.applicationId,
      processingType: 'STREAMING',
      inputs: app.inputs,
      outputs: app.outputs,
      ...(eventType === 'FAIL'
        ? { error: new Error(`streams application ${msg.applicationId} entered ERROR (from ${msg.previous})`) }
        : {}),
    });
    if (eventType !== 'START') app.runId = undefined;
    for (const s of this.sinks) {
      const p = s
        .emit(event)
        .catch((err: Error) => {
          this.errors.push(err);
        })
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }

  /** Waits for events being delivered. */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  close(): void {
    diagnostics.unsubscribe('tributary:streams:state', this.onState);
  }
}
