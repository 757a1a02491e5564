import { z } from 'zod';
import { TributaryError } from '../core/index.ts';

/** Validates with zod; the first issue becomes an INVALID_ARGUMENT naming the field path. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, field: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = [field, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))]
    .filter((p) => p !== '')
    .join('.')
    .replaceAll('.[', '[');
  return fail(path, issue.message);
}

function fail(path: string, message: string): never {
  throw new TributaryError('INVALID_ARGUMENT', `${path}: ${message}`, { field: path });
}

export const nonEmpty = z.string().min(1, 'expected a non-empty string');
