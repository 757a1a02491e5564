export * from './api.ts';
export * from './compression.ts';
export * from './crc32c.ts';
export * from './record-batch.ts';
