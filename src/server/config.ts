/**
 * Server configuration from a file (YAML or JSON), the environment (`TRIBUTARY_*`) and command-line flags, in
 * that order of precedence (flags win). Every value is validated; an error names the field, what was expected,
 * what was given and where it came from.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { describeValue, TributaryError } from '../core/index.ts';
import type { PlatformOptions } from './platform.ts';

const port = z
  .number({ error: 'expected a port number 0-65535' })
  .int('expected a port number 0-65535')
  .min(0, 'expected a port number 0-65535')
  .max(65535, 'expected a port number 0-65535');

const SIZE = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?$/i;
const UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};
/** Bytes: a number, or a string such as "512kb" or "16mb" (binary units). */
const size = z
  .union([z.number(), z.string()], { error: 'expected a size in bytes (a number, or e.g. "16mb")' })
  .transform((v, ctx) => {
    let n = Number.NaN;
    if (typeof v === 'number') n = v;
    else {
      const m = SIZE.exec(v.trim());
      if (m) n = Number(m[1]) * (UNITS[(m[2] ?? 'b').toLowerCase()] ?? 1);
    }
    if (!Number.isSafeInteger(n) || n < 1) {
      ctx.addIssue({ code: 'custom', message: 'expected a size in bytes (a positive integer, or e.g. "16mb")' });
      return z.NEVER;
    }
    return n;
  });

export const serverConfigSchema = z.strictObject({
  /** Where every part keeps its data. */
  dataDir: z
    .string({ error: 'expected a directory path' })
    .min(1, 'expected a directory path')
    .default('./tributary-data'),
  /** Interface both listeners bind. */
  host: z
    .string({ error: 'expected a host name or IP address' })
    .min(1, 'expected a host name or IP address')
    .default('127.0.0.1'),
  kafka: z
    .strictObject({
      port: port.default(9092),
      autoCreateTopics: z.boolean({ error: 'expected true or false' }).default(true),
      /** SASL users for Kafka clients; when set, clients must authenticate. */
      sasl: z
        .strictObject({
          mechanisms: z
            .array(z.enum(['PLAIN', 'SCRAM-SHA-256'], { error: 'expected "PLAIN" or "SCRAM-SHA-256"' }), {
              error: 'expected a list of mechanisms',
            })
            .min(1, 'expected at least one mechanism')
            .default(['PLAIN', 'SCRAM-SHA-256']),
          users: z
            .record(
              z.string().min(1, 'expected a non-empty user name'),
              z.string({ error: 'expected a password (string)' }).min(1, 'expected a non-empty password'),
              { error: 'expected an object of user name -> password' },
            )
            .refine((u) => Object.keys(u).length > 0, 'expected at least one user'),
        })
        .optional(),
    })
    .prefault({}),
  http: z
    .strictObject({
      port: port.default(8888),
      /** Largest request body accepted (413 beyond it). */
      bodyLimit: size.default(16 * 1024 * 1024),
      /** HTTPS with a PEM certificate and key (file paths). */
      tls: z
        .strictObject({
          cert: z.string({ error: 'expected the path of a PEM certificate file' }).min(1, 'expected a file path'),
          key: z.string({ error: 'expected the path of a PEM private key file' }).min(1, 'expected a file path'),
        })
        .optional(),
    })
    .prefault({}),
  auth: z
    .strictObject({
      /** Bearer tokens accepted on every HTTP route but the health checks; none: no authentication. */
      tokens: z
        .array(
          z
            .string({ error: 'expected a token (string)' })
            .min(8, 'expected a token of at least 8 characters')
            .regex(/^\S+$/, 'expected a token without spaces'),
          { error: 'expected a list of tokens' },
        )
        .default([]),
    })
    .prefault({}),
  jobs: z
    .strictObject({
      commitIntervalMs: z
        .number({ error: 'expected milliseconds (a positive integer)' })
        .int('expected milliseconds (a positive integer)')
        .positive('expected milliseconds (a positive integer)')
        .default(100),
    })
    .prefault({}),
});

export type ServerConfig = z.output<typeof serverConfigSchema>;
export type ServerConfigInput = z.input<typeof serverConfigSchema>;

type Kind = 'string' | 'path' | 'int' | 'bool' | 'list' | 'users';

/** One setting reachable from the environment and the command line. */
interface Setting {
  path: string[];
  env: string;
  flag: string;
  kind: Kind;
}

/** Settings that the environment and flags can set (the file can set everything). */
export const SETTINGS: readonly Setting[] = [
  { path: ['dataDir'], env: 'TRIBUTARY_DATA_DIR', flag: '--data-dir', kind: 'path' },
  { path: ['host'], env: 'TRIBUTARY_HOST', flag: '--host', kind: 'string' },
  { path: ['kafka', 'port'], env: 'TRIBUTARY_KAFKA_PORT', flag: '--kafka-port', kind: 'int' },
  {
    path: ['kafka', 'autoCreateTopics'],
    env: 'TRIBUTARY_AUTO_CREATE_TOPICS',
    flag: '--auto-create-topics',
    kind: 'bool',
  },
  { path: ['kafka', 'sasl', 'users'], env: 'TRIBUTARY_KAFKA_SASL_USERS', flag: '--sasl-user', kind: 'users' },
  {
    path: ['kafka', 'sasl', 'mechanisms'],
    env: 'TRIBUTARY_KAFKA_SASL_MECHANISMS',
    flag: '--sasl-mechanism',
    kind: 'list',
  },
  { path: ['http', 'port'], env: 'TRIBUTARY_HTTP_PORT', flag: '--http-port', kind: 'int' },
  { path: ['http', 'bodyLimit'], env: 'TRIBUTARY_HTTP_BODY_LIMIT', flag: '--body-limit', kind: 'string' },
  { path: ['http', 'tls', 'cert'], env: 'TRIBUTARY_HTTP_TLS_CERT', flag: '--tls-cert', kind: 'path' },
  { path: ['http', 'tls', 'key'], env: 'TRIBUTARY_HTTP_TLS_KEY', flag: '--tls-key', kind: 'path' },
  { path: ['auth', 'tokens'], env: 'TRIBUTARY_AUTH_TOKENS', flag: '--auth-token', kind: 'list' },
  {
    path: ['jobs', 'commitIntervalMs'],
    env: 'TRIBUTARY_JOBS_COMMIT_INTERVAL_MS',
    flag: '--commit-interval-ms',
    kind: 'int',
  },
];

/** Fields holding file paths: relative ones resolve against the config file's directory when set there. */
const PATH_FIELDS = ['dataDir', 'http.tls.cert', 'http.tls.key'];

/** A string from the environment or a flag, as the type the schema expects (left as is when it is not one). */
function convert(kind: Kind, raw: string | string[] | boolean): unknown {
  if (typeof raw === 'boolean') return raw;
  const items = (Array.isArray(raw) ? raw : [raw]).flatMap((s) => s.split(',')).map((s) => s.trim());
  const one = Array.isArray(raw) ? raw.join(',') : raw;
  switch (kind) {
    case 'int':
      return /^-?\d+$/.test(one.trim()) ? Number(one.trim()) : one;
    case 'bool':
      return one === 'true' || one === '1' ? true : one === 'false' || one === '0' ? false : one;
    case 'list':
      return items.filter((s) => s !== '');
    case 'users': {
      // "alice:secret,bob:pw": a user without ":" keeps the whole item as its name and gets no password
      const out: Record<string, unknown> = {};
      for (const item of items.filter((s) => s !== '')) {
        const i = item.indexOf(':');
        out[i < 0 ? item : item.slice(0, i)] = i < 0 ? undefined : item.slice(i + 1);
      }
      return out;
    }
    default:
      return one;
  }
}

function setAt(target: Record<string, unknown>, p: string[], value: unknown): void {
  let cur = target;
  for (const k of p.slice(0, -1)) {
    const next = cur[k];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[p.at(-1) as string] = value;
}

/** Deep merge: objects merge, anything else (arrays included) replaces. Records where each leaf came from. */
function merge(
  target: Record<string, unknown>,
  source: Record<string, unknown>,
  origin: string,
  origins: Map<string, string>,
  prefix: string[] = [],
): void {
  for (const [k, v] of Object.entries(source)) {
    const p = [...prefix, k];
    const plain = (x: unknown) => x !== null && typeof x === 'object' && !Array.isArray(x);
    if (plain(v)) {
      // Objects merge into what is there (or a fresh object), so that every leaf records its own origin.
      if (!plain(target[k])) target[k] = {};
      merge(target[k] as Record<string, unknown>, v as Record<string, unknown>, origin, origins, p);
    } else {
      target[k] = v;
      origins.set(p.join('.'), origin);
    }
  }
}

/** Reads a YAML or JSON config file (YAML is a superset of JSON; `.json` files get JSON's own errors). */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `--config: cannot read ${JSON.stringify(file)}: ${(err as Error).message}`,
      {
        field: 'config',
        cause: err,
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
      {
        field: 'config',
        cause: err,
      },
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `${file}: expected a mapping of settings at the top level, got ${describeValue(parsed)}`,
      {
        field: 'config',
      },
    );
  const out = parsed as Record<string, unknown>;
  // Relative paths in a file mean relative to the file, wherever the server is started from.
  const dir = path.dirname(path.resolve(file));
  for (const f of PATH_FIELDS) {
    const keys = f.split('.');
    let cur: unknown = out;
    for (const k of keys.slice(0, -1))
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
    const last = keys.at(-1) as string;
    if (cur && typeof cur === 'object') {
      const v = (cur as Record<string, unknown>)[last];
      if (typeof v === 'string' && v !== '' && !path.isAbsolute(v))
        (cur as Record<string, unknown>)[last] = path.join(dir, v);
    }
  }
  return out;
}

export interface LoadConfigOptions {
  /** Config file (YAML or JSON); default `env.TRIBUTARY_CONFIG`. */
  file?: string;
  /** Environment (default `process.env`); only the `TRIBUTARY_*` names in SETTINGS are read. */
  env?: Record<string, string | undefined>;
  /** Flags by name (e.g. `{ '--http-port': '0', '--auth-token': ['a', 'b'] }`); unset ones are omitted. */
  flags?: Record<string, string | string[] | boolean | undefined>;
}

/** File, then environment, then flags; validated. Throws INVALID_ARGUMENT naming the field and its source. */
export function loadConfig(options: LoadConfigOptions = {}): ServerConfig {
  const env = options.env ?? process.env;
  const origins = new Map<string, string>();
  const merged: Record<string, unknown> = {};
  const file = options.file ?? env.TRIBUTARY_CONFIG;
  if (file !== undefined && file !== '') merge(merged, readConfigFile(file), file, origins);
  const fromEnv: Record<string, unknown> = {};
  const envOrigins = new Map<string, string>();
  for (const s of SETTINGS) {
    const raw = env[s.env];
    if (raw === undefined) continue;
    setAt(fromEnv, s.path, convert(s.kind, raw));
    envOrigins.set(s.path.join('.'), s.env);
  }
  const fromFlags: Record<string, unknown> = {};
  const flagOrigins = new Map<string, string>();
  const known = new Set(SETTINGS.map((s) => s.flag));
  for (const [flag, raw] of Object.entries(options.flags ?? {})) {
    if (raw === undefined) continue;
    if (!known.has(flag))
      throw new TributaryError('INVALID_ARGUMENT', `${flag}: unknown flag; expected one of ${[...known].join(', ')}`, {
        field: flag,
      });
  }
  for (const s of SETTINGS) {
    const raw = options.flags?.[s.flag];
    if (raw === undefined) continue;
    setAt(fromFlags, s.path, convert(s.kind, raw));
    flagOrigins.set(s.path.join('.'), s.flag);
  }
  const layer = (values: Record<string, unknown>, from: Map<string, string>) => {
    const tmp = new Map<string, string>();
    merge(merged, values, '', tmp);
    // A leaf's origin is the setting that wrote it (or its parent setting, for users records).
    for (const k of tmp.keys()) {
      const owner = [...from.keys()].find((p) => k === p || k.startsWith(`${p}.`));
      origins.set(k, owner === undefined ? '' : (from.get(owner) as string));
    }
  };
  layer(fromEnv, envOrigins);
  layer(fromFlags, flagOrigins);

  const r = serverConfigSchema.safeParse(merged, { reportInput: true });
  if (r.success) return r.data;
  const issue = r.error.issues[0] as z.core.$ZodIssue & { input?: unknown; keys?: string[] };
  let p = issue.path.map(String);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    // Name the unknown key itself, with the settings that exist beside it.
    p = [...p, ...(issue.keys ?? []).slice(0, 1)];
    message = `unknown setting; expected one of ${expectedKeys(issue.path.map(String)).join(', ')}`;
  }
  const field = p.join('.') || 'config';
  let origin: string | undefined;
  for (let n = p.length; n > 0 && origin === undefined; n--) origin = origins.get(p.slice(0, n).join('.'));
  const got = 'input' in issue && issue.code !== 'unrecognized_keys' ? `, got ${describeValue(issue.input)}` : '';
  throw new TributaryError('INVALID_ARGUMENT', `${field}: ${message}${got}${origin ? ` (from ${origin})` : ''}`, {
    field,
  });
}

function expectedKeys(at: string[]): string[] {
  let s: z.ZodType = serverConfigSchema;
  for (const k of at) {
    let inner: unknown = s;
    // unwrap defaults and optionals down to the object
    while (inner && typeof inner === 'object' && 'unwrap' in inner && typeof inner.unwrap === 'function')
      inner = (inner as { unwrap(): unknown }).unwrap();
    const shape = (inner as { shape?: Record<string, z.ZodType> }).shape;
    if (!shape?.[k]) return [];
    s = shape[k];
  }
  let inner: unknown = s;
  while (inner && typeof inner === 'object' && 'unwrap' in inner && typeof inner.unwrap === 'function')
    inner = (inner as { unwrap(): unknown }).unwrap();
  return Object.keys((inner as { shape?: Record<string, unknown> }).shape ?? {});
}

/** The platform's options for a validated config: reads the TLS files (errors name the field). */
export function platformOptions(config: ServerConfig): PlatformOptions {
  const read = (file: string, field: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `${field}: cannot read ${JSON.stringify(file)}: ${(err as Error).message}`,
        {
          field,
          cause: err,
        },
      );
    }
  };
  const tls = config.http.tls;
  return {
    dataDir: config.dataDir,
    host: config.host,
    kafkaPort: config.kafka.port,
    httpPort: config.http.port,
    autoCreateTopics: config.kafka.autoCreateTopics,
    bodyLimit: config.http.bodyLimit,
    commitIntervalMs: config.jobs.commitIntervalMs,
    ...(config.kafka.sasl === undefined
      ? {}
      : { sasl: { mechanisms: config.kafka.sasl.mechanisms, users: config.kafka.sasl.users } }),
    ...(config.auth.tokens.length === 0 ? {} : { auth: { tokens: config.auth.tokens } }),
    ...(tls === undefined
      ? {}
      : { tls: { cert: read(tls.cert, 'http.tls.cert'), key: read(tls.key, 'http.tls.key') } }),
  };
}
