// A Nexmark query's topology as a module export, so that worker threads can rebuild it
// (`KafkaStreams.fromModule({ module, export: 'buildNexmarkTopology', args: [query, options] }, { numThreads })`).
import type { Topology } from '../topology.ts';
import { type NexmarkQuery, nexmarkTopology, type QueryOptions } from './queries.ts';

export const NEXMARK_TOPOLOGY_MODULE: URL = new URL(import.meta.url);

/** Builds query `query` (its arguments are JSON: they travel to the worker threads). */
export function buildNexmarkTopology(query: NexmarkQuery, options: QueryOptions): Topology {
  return nexmarkTopology(query, options);
}
