import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';

export interface AuthOptions {
  /** Accepted bearer tokens; empty: no authentication. */
  tokens: string[];
  /** Routes reachable without a token (default: /health and /status/health, for probes). */
  public?: string[];
}

const digest = (s: string): Buffer => crypto.createHash('sha256').update(s).digest();

/**
 * Bearer-token authentication as a root `onRequest` hook, so it covers every route registered on the server.
 * Tokens are compared through their SHA-256 digests with `timingSafeEqual`, which takes the same time whatever
 * the token's length or how much of it matches.
 */
export function installBearerAuth(app: FastifyInstance, options: AuthOptions): void {
  if (options.tokens.length === 0) return;
  const accepted = options.tokens.map(digest);
  const open = new Set(options.public ?? ['/health', '/status/health']);
  app.addHook('onRequest', async (req, reply) => {
    const url = req.url;
    const q = url.indexOf('?');
    const route = q < 0 ? url : url.slice(0, q);
    // The console's page and scripts hold no data: a browser must load them to ask for a token at all.
    if (open.has(route) || route === '/' || route.startsWith('/console/')) return;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (m === null)
      return unauthorized(
        reply,
        route,
        header === undefined
          ? 'Authorization: expected "Bearer <token>", got no Authorization header'
          : 'Authorization: expected "Bearer <token>"',
      );
    const given = digest(m[1] as string);
    let ok = false;
    for (const a of accepted) if (crypto.timingSafeEqual(a, given)) ok = true;
    if (!ok) return unauthorized(reply, route, 'Authorization: the bearer token is not valid');
    return undefined;
  });
}

/** 401 in the error shape of the API the client called: Druid's, Iceberg REST's, or Tributary's JSON. */
function unauthorized(reply: FastifyReply, route: string, message: string): FastifyReply {
  reply.code(401).header('www-authenticate', 'Bearer realm="tributary"').type('application/json');
  if (route.startsWith('/druid') || route.startsWith('/status'))
    return reply.send({
      error: 'druidException',
      errorCode: 'unauthorized',
      persona: 'USER',
      category: 'UNAUTHORIZED',
      errorMessage: message,
      context: {},
      errorClass: 'org.apache.druid.error.DruidException',
      host: null,
    });
  if (route.startsWith('/iceberg'))
    return reply.send({ error: { message, type: 'NotAuthorizedException', code: 401 } });
  return reply.send({ error: 'UNAUTHENTICATED', message, field: 'Authorization' });
}
