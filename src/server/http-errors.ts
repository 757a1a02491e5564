import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { type ErrorCode, isTributaryError, TributaryError } from '../core/index.ts';

/** HTTP status for each error code of Tributary's own JSON routes. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  UNSUPPORTED: 501,
  TIMEOUT: 504,
  UNAVAILABLE: 503,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
};

/** Validates request input with a zod schema; the error names the field (`where.path.to.field`). */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = [where, ...(issue?.path ?? []).map(String)].join('.');
  throw new TributaryError('INVALID_ARGUMENT', `${field}: ${issue?.message ?? 'invalid'}`, { field });
}

/** Fastify error handler: `{ error, message, field? }` with the status of the error's code. */
export function sendJsonError(err: FastifyError | Error, _req: FastifyRequest, reply: FastifyReply): void {
  const code = isTributaryError(err) ? err.code : undefined;
  const status = code ? (STATUS[code] ?? 500) : ((err as { statusCode?: number }).statusCode ?? 500);
  void reply.code(status).send({
    error: code ?? (status < 500 ? 'INVALID_ARGUMENT' : 'INTERNAL'),
    // Fastify's own 4xx (a bad JSON body, a body over the limit) are about the request body.
    message: code || status >= 500 ? err.message : `request body: ${err.message}`,
    ...(isTributaryError(err) && err.field ? { field: err.field } : {}),
  });
}
