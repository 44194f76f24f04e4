import { existsSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export type ListenAt = { readonly host: string; readonly port: number } | { readonly path: string };
export interface TlsFiles {
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
}

/** One HTTP(S) listener that can be stopped and started again at the same address. */
export class Listener {
  private server: http.Server | undefined;
  constructor(
    private readonly handler: http.RequestListener,
    private where: ListenAt,
    private readonly tls?: TlsFiles,
  ) {}

  address(): AddressInfo | string | null {
    return this.server?.address() ?? null;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    if (this.server !== undefined) return;
    if ('path' in this.where && existsSync(this.where.path)) unlinkSync(this.where.path);
    const server = this.tls !== undefined ? https.createServer({ keepAlive: true, ...this.tls }, this.handler) : http.createServer({ keepAlive: true }, this.handler);
    // XAPI keeps persistent connections (docs/xapi.md §1.3, CP-48623).
    server.keepAliveTimeout = 60_000;
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const onListening = (): void => {
        server.off('error', reject);
        resolve();
      };
      if ('path' in this.where) server.listen(this.where.path, onListening);
      else server.listen(this.where.port, this.where.host, onListening);
    });
    this.server = server;
    // An ephemeral port is kept, so that a restart comes back at the same address.
    const a = server.address();
    if (typeof a === 'object' && a !== null) this.where = { host: a.address, port: a.port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
    server.closeAllConnections();
    await closed;
  }

  /** `http(s)://HOST:PORT` of a TCP listener, once started. */
  url(): string | undefined {
    const a = this.address();
    if (typeof a !== 'object' || a === null) return undefined;
    return `${this.tls !== undefined ? 'https' : 'http'}://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
  }
}

/** The request body, or why xapi would refuse it (`Http_svr.read_body`, http_svr.ml:700-712). */
export function readBody(req: http.IncomingMessage, limit: number): Promise<{ body: string } | { refused: 'no-length' | 'too-large' }> {
  return new Promise((resolve) => {
    const declared = req.headers['content-length'];
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () => {
      if (declared === undefined) resolve({ refused: 'no-length' });
      else if (size > limit || Number(declared) > limit) resolve({ refused: 'too-large' });
      else resolve({ body: Buffer.concat(chunks).toString('utf8') });
    });
    req.on('error', () => { resolve({ refused: 'no-length' }); });
  });
}
