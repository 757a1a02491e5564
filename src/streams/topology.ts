import type { Node } from './node.ts';
import type { StoreSpec } from './stores.ts';

export interface NodeSpec {
  name: string;
  kind: 'source' | 'processor' | 'sink';
  parents: string[];
  /** Stores this node reads or writes. */
  stores: string[];
  create: () => Node;
  /** Source topics; internal ones are named without the application id prefix. */
  topics?: string[];
  /** Sink topic (or a description for dynamic routing). */
  sinkTopic?: string;
  internal?: boolean;
  /** Name under which parents address this node in `forward(rec, childName)` (branches). */
  childName?: string;
}

export interface GlobalSpec {
  topic: string;
  storeName: string;
  create: () => Node;
}

export interface SubtopologyDescription {
  id: number;
  nodes: {
    name: string;
    kind: NodeSpec['kind'];
    topics?: string[];
    topic?: string;
    stores: string[];
    successors: string[];
    predecessors: string[];
  }[];
}

export interface TopologyDescription {
  subtopologies: SubtopologyDescription[];
  globalStores: { topic: string; store: string }[];
  toString(): string;
}

/** An immutable built topology: node specs in topological order, stores and global tables. */
export class Topology {
  readonly nodes: readonly NodeSpec[];
  readonly stores: ReadonlyMap<string, StoreSpec>;
  readonly globals: readonly GlobalSpec[];

  constructor(nodes: NodeSpec[], stores: Map<string, StoreSpec>, globals: GlobalSpec[]) {
    this.nodes = nodes;
    this.stores = stores;
    this.globals = globals;
  }

  /** External source topics (excluding repartition topics and global tables' topics). */
  sourceTopics(): string[] {
    const out = new Set<string>();
    for (const n of this.nodes) if (n.kind === 'source' && !n.internal) for (const t of n.topics ?? []) out.add(t);
    return [...out];
  }
  /** Repartition topics, unprefixed. */
  internalTopics(): string[] {
    const out = new Set<string>();
    for (const n of this.nodes) if (n.kind === 'source' && n.internal) for (const t of n.topics ?? []) out.add(t);
    return [...out];
  }
  changelogStores(): StoreSpec[] {
    return [...this.stores.values()].filter((s) => s.logging && !s.global);
  }

  describe(): TopologyDescription {
    // Sub-topologies: nodes connected by edges or by a shared store (as in Kafka Streams).
    const parent = new Map<string, string>();
    const find = (x: string): string => {
      let r = x;
      while (parent.get(r) !== r) r = parent.get(r) as string;
      parent.set(x, r);
      return r;
    };
    const union = (a: string, b: string): void => {
      parent.set(find(a), find(b));
    };
    for (const n of this.nodes) parent.set(n.name, n.name);
    const storeOwner = new Map<string, string>();
    for (const n of this.nodes) {
      for (const p of n.parents) union(n.name, p);
      for (const s of n.stores) {
        const o = storeOwner.get(s);
        if (o === undefined) storeOwner.set(s, n.name);
        else union(n.name, o);
      }
    }
    const groups = new Map<string, NodeSpec[]>();
    for (const n of this.nodes) {
      const r = find(n.name);
      const g = groups.get(r);
      if (g === undefined) groups.set(r, [n]);
      else g.push(n);
    }
    const successors = new Map<string, string[]>();
    for (const n of this.nodes) for (const p of n.parents) successors.set(p, [...(successors.get(p) ?? []), n.name]);
    const subtopologies: SubtopologyDescription[] = [...groups.values()].map((g, id) => ({
      id,
      nodes: g.map((n) => ({
        name: n.name,
        kind: n.kind,
        ...(n.topics === undefined ? {} : { topics: n.topics }),
        ...(n.sinkTopic === undefined ? {} : { topic: n.sinkTopic }),
        stores: n.stores,
        successors: successors.get(n.name) ?? [],
        predecessors: n.parents,
      })),
    }));
    const globalStores = this.globals.map((g) => ({ topic: g.topic, store: g.storeName }));
    return {
      subtopologies,
      globalStores,
      toString() {
        const lines = ['Topologies:'];
        for (const s of subtopologies) {
          lines.push(`   Sub-topology: ${s.id}`);
          for (const n of s.nodes) {
            if (n.kind === 'source') lines.push(`    Source: ${n.name} (topics: [${(n.topics ?? []).join(', ')}])`);
            else if (n.kind === 'sink') lines.push(`    Sink: ${n.name} (topic: ${n.topic})`);
            else lines.push(`    Processor: ${n.name} (stores: [${n.stores.join(', ')}])`);
            if (n.successors.length > 0) lines.push(`      --> ${n.successors.join(', ')}`);
            else if (n.kind !== 'sink') lines.push('      --> none');
            if (n.predecessors.length > 0) lines.push(`      <-- ${n.predecessors.join(', ')}`);
          }
          lines.push('');
        }
        for (const [i, g] of globalStores.entries()) {
          lines.push(`  Sub-topology: ${subtopologies.length + i} for global store (will not generate tasks)`);
          lines.push(`    Source: ${g.store}-source (topics: [${g.topic}])`);
          lines.push(`    Processor: ${g.store}-processor (stores: [${g.store}])`);
        }
        return lines.join('\n');
      },
    };
  }
}
