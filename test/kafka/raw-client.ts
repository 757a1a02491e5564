/** A bare Kafka protocol client over the generated codecs, for broker tests. */
import net from 'node:net';
import { APIS, RequestHeaderCodec, ResponseHeaderCodec } from '../../src/kafka/generated/index.ts';
import { Reader, Writer } from '../../src/kafka/wire.ts';

export class RawClient {
  readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private readonly pending: { resolve: (frame: Buffer) => void; reject: (err: Error) => void }[] = [];
  private correlationId = 0;
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      while (this.buffered.length >= 4) {
        const size = this.buffered.readInt32BE(0);
        if (this.buffered.length < 4 + size) break;
        const frame = this.buffered.subarray(4, 4 + size);
        this.buffered = this.buffered.subarray(4 + size);
        this.pending.shift()?.resolve(frame);
      }
    });
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closed = true;
        for (const p of this.pending.splice(0)) p.reject(new Error('connection closed'));
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private frame(apiKey: number, version: number, body: unknown): { bytes: Buffer; correlationId: number } {
    const api = APIS.get(apiKey)!;
    const flexible = api.flexibleFrom >= 0 && version >= api.flexibleFrom;
    const w = new Writer();
    w.int32(0);
    const correlationId = ++this.correlationId;
    RequestHeaderCodec.write(w, flexible ? 2 : 1, {
      requestApiKey: apiKey,
      requestApiVersion: version,
      correlationId,
      clientId: 'raw-test',
    });
    api.request.write(w, version, body as never);
    w.patchFirstInt32(w.length - 4);
    return { bytes: w.toBuffer(), correlationId };
  }

  /** Sends a request that gets no response (Produce with acks=0). */
  sendOnly(apiKey: number, version: number, body: unknown): void {
    this.socket.write(this.frame(apiKey, version, body).bytes);
  }

  /** Sends a request and decodes the response with the generated codecs. */
  async request<T = Record<string, unknown>>(apiKey: number, version: number, body: unknown): Promise<T> {
    const api = APIS.get(apiKey)!;
    const flexible = api.flexibleFrom >= 0 && version >= api.flexibleFrom;
    const { bytes, correlationId } = this.frame(apiKey, version, body);
    const frame = await this.sendRaw(bytes);
    const r = new Reader(frame);
    const header = ResponseHeaderCodec.decode(flexible && apiKey !== 18 ? 1 : 0, r);
    if (header.correlationId !== correlationId) throw new Error(`correlation id ${header.correlationId}`);
    return api.response.decode(version, r) as T;
  }

  /** Writes bytes and waits for the next response frame. */
  sendRaw(bytes: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.write(bytes);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
