export * from './avro-long.ts';
export * from './diagnostics.ts';
export * from './duration.ts';
export * from './errors.ts';
export * from './heap.ts';
export * from './layout.ts';
