/**
 * Server side of SASL PLAIN and SCRAM-SHA-256 (RFC 5802 / RFC 7677) for the Kafka broker. Users come
 * from configuration (user -> password); SCRAM credentials are derived once per user with a random salt.
 */
import crypto from 'node:crypto';

export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256';

export interface SaslOptions {
  mechanisms: SaslMechanism[];
  users: Record<string, string>;
  /** When true, clients may skip authentication entirely. */
  allowAnonymous?: boolean;
}

export type SaslStep =
  | { done: true; user: string; response: Buffer }
  | { done: false; response: Buffer }
  | { failed: string };

const ITERATIONS = 4096;

interface ScramCredential {
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return crypto.createHmac('sha256', key).update(data).digest();
}

function sha256(data: Buffer): Buffer {
  return crypto.createHash('sha256').update(data).digest();
}

export class SaslAuthenticator {
  readonly options: SaslOptions;
  private readonly credentials = new Map<string, ScramCredential>();

  constructor(options: SaslOptions) {
    this.options = options;
  }

  supports(mechanism: string): mechanism is SaslMechanism {
    return (this.options.mechanisms as string[]).includes(mechanism);
  }

  private credential(user: string): ScramCredential | undefined {
    const password = this.options.users[user];
    if (password === undefined || !Object.hasOwn(this.options.users, user)) return undefined;
    let c = this.credentials.get(user);
    if (c === undefined) {
      const salt = crypto.randomBytes(16);
      const salted = crypto.pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256');
      c = { salt, storedKey: sha256(hmac(salted, 'Client Key')), serverKey: hmac(salted, 'Server Key') };
      this.credentials.set(user, c);
    }
    return c;
  }

  /** Starts a conversation for one connection. */
  start(mechanism: SaslMechanism): SaslConversation {
    return mechanism === 'PLAIN' ? new PlainConversation(this) : new ScramConversation(this);
  }

  checkPlain(user: string, password: string): boolean {
    const expected = this.options.users[user];
    if (expected === undefined || !Object.hasOwn(this.options.users, user)) return false;
    const a = Buffer.from(expected);
    const b = Buffer.from(password);
    return a.length === b.length && crypto.timingSafeEqual(a, b);
  }

  scramCredential(user: string): ScramCredential | undefined {
    return this.credential(user);
  }
}

export interface SaslConversation {
  step(token: Buffer): SaslStep;
}

class PlainConversation implements SaslConversation {
  private readonly auth: SaslAuthenticator;
  constructor(auth: SaslAuthenticator) {
    this.auth = auth;
  }

  step(token: Buffer): SaslStep {
    // authzid NUL authcid NUL password
    const parts = token.toString('utf8').split('\u0000');
    if (parts.length !== 3) return { failed: 'PLAIN: expected authzid NUL user NUL password' };
    const [, user, password] = parts as [string, string, string];
    if (!this.auth.checkPlain(user, password)) return { failed: `PLAIN: authentication failed for user ${user}` };
    return { done: true, user, response: Buffer.alloc(0) };
  }
}

function parseAttributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

function decodeSaslName(name: string): string {
  return name.replaceAll('=2C', ',').replaceAll('=3D', '=');
}

class ScramConversation implements SaslConversation {
  private readonly auth: SaslAuthenticator;
  private state: 'first' | 'final' | 'done' = 'first';
  private user = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private clientNonce = '';
  private credential: ScramCredential | undefined;

  constructor(auth: SaslAuthenticator) {
    this.auth = auth;
  }

  step(token: Buffer): SaslStep {
    const text = token.toString('utf8');
    if (this.state === 'first') {
      // gs2 header "n,," (no channel binding) then the bare message
      const m = /^([ny]|p=[^,]*),([^,]*),(.*)$/s.exec(text);
      if (m === null || m[1]!.startsWith('p')) return { failed: 'SCRAM: expected a client-first message' };
      this.clientFirstBare = m[3]!;
      const attrs = parseAttributes(this.clientFirstBare);
      const user = attrs.get('n');
      const clientNonce = attrs.get('r');
      if (user === undefined || clientNonce === undefined || clientNonce === '') {
        return { failed: 'SCRAM: the client-first message needs n= and r=' };
      }
      this.user = decodeSaslName(user);
      this.credential = this.auth.scramCredential(this.user);
      // an unknown user still gets a challenge (with a throwaway salt) so usernames cannot be probed
      const salt = this.credential?.salt ?? crypto.randomBytes(16);
      this.clientNonce = clientNonce;
      this.nonce = clientNonce + crypto.randomBytes(18).toString('base64');
      this.serverFirst = `r=${this.nonce},s=${salt.toString('base64')},i=${ITERATIONS}`;
      this.state = 'final';
      return { done: false, response: Buffer.from(this.serverFirst) };
    }
    if (this.state === 'final') {
      this.state = 'done';
      const proofAt = text.lastIndexOf(',p=');
      if (proofAt < 0) return { failed: 'SCRAM: the client-final message needs p=' };
      const withoutProof = text.slice(0, proofAt);
      const attrs = parseAttributes(text);
      // librdkafka 2.0.x repeats the client nonce before the combined nonce; its proof covers what it sent
      const r = attrs.get('r');
      if (r !== this.nonce && r !== this.clientNonce + this.nonce) return { failed: 'SCRAM: nonce mismatch' };
      const proof = Buffer.from(attrs.get('p') ?? '', 'base64');
      const cred = this.credential;
      if (cred === undefined || proof.length !== 32) {
        return { failed: `SCRAM-SHA-256: authentication failed for user ${this.user}` };
      }
      const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
      const signature = hmac(cred.storedKey, authMessage);
      const clientKey = Buffer.alloc(32);
      for (let i = 0; i < 32; i++) clientKey[i] = proof[i]! ^ signature[i]!;
      if (!crypto.timingSafeEqual(sha256(clientKey), cred.storedKey)) {
        return { failed: `SCRAM-SHA-256: authentication failed for user ${this.user}` };
      }
      const serverSignature = hmac(cred.serverKey, authMessage).toString('base64');
      return { done: true, user: this.user, response: Buffer.from(`v=${serverSignature}`) };
    }
    return { failed: 'SCRAM: the conversation is already complete' };
  }
}
