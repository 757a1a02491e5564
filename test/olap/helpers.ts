import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/druid');

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'olap-test-'));
}

/** Parses JSON keeping Druid's number types apart, as Druid's IT harness compares: 5 (long) != 5.0 (double). */
export function typedJson(text: string): unknown {
  return JSON.parse(text, (_k, v, ctx?: { source?: string }) => {
    if (typeof v === 'number' && ctx?.source !== undefined) {
      return /[.eE]/.test(ctx.source) ? { double: v } : { long: BigInt(ctx.source) };
    }
    return v;
  });
}

export function fixtureText(rel: string, replacements: Record<string, string> = {}): string {
  let s = fs.readFileSync(path.join(FIXTURES, rel), 'utf8');
  for (const [k, v] of Object.entries(replacements)) s = s.replaceAll(k, v);
  return s;
}
