import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { renameSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { cpuSeconds, rssMb } from './proc.js';

/**
 * The bench's witnesses of a cold start, each timestamped with the bench's `performance.now()`:
 * every XAPI call the in-process simulator serves (`XapiCallLog`), every JSON-RPC message between the
 * daemon and ovsdb-server (`OvsdbTap`, a pass-through proxy on the database socket), and the CPU and
 * RSS of the daemon and ovsdb-server (`ProcSampler`). Phases are cut from them afterwards
 * (`phases.ts`), so nothing in the daemon needs to know it is measured.
 */

export interface XapiCallRecord {
  /** Request headers parsed (ms, bench clock). */
  readonly start: number;
  /** Reply fully written. */
  end: number;
  method: string;
  readonly bytesIn: number;
  bytesOut: number;
}

/**
 * Every HTTP request the simulator's servers answer, through node's `http.server.*` diagnostics
 * channels (no hook in the simulator). The method is the one the simulator's own per-method counter
 * gained once the request body was read, looked up in `counters()`.
 */
export class XapiCallLog {
  readonly calls: XapiCallRecord[] = [];
  private readonly open = new Map<ServerResponse, XapiCallRecord>();
  private lastCounts: Record<string, number>;

  constructor(private readonly counters: () => { readonly calls: Readonly<Record<string, number>> }) {
    this.lastCounts = { ...counters().calls };
    subscribe('http.server.request.start', this.onStart);
    subscribe('http.server.response.finish', this.onFinish);
  }

  close(): void {
    unsubscribe('http.server.request.start', this.onStart);
    unsubscribe('http.server.response.finish', this.onFinish);
  }

  private readonly onStart = (message: unknown): void => {
    const { request, response } = message as { request: IncomingMessage; response: ServerResponse };
    const record: XapiCallRecord = { start: performance.now(), end: Number.NaN, method: '?', bytesIn: Number(request.headers['content-length'] ?? 0), bytesOut: 0 };
    this.calls.push(record);
    this.open.set(response, record);
    // The simulator passes its headers to writeHead, where getHeader cannot see them: read them there.
    const writeHead = response.writeHead.bind(response) as (...args: unknown[]) => ServerResponse;
    response.writeHead = ((...args: unknown[]): ServerResponse => {
      const headers = args.find((a): a is Record<string, unknown> => typeof a === 'object' && a !== null && !Array.isArray(a));
      record.bytesOut = Number(headers?.['content-length'] ?? 0);
      return writeHead(...args);
    });
    request.once('end', () => {
      // The simulator counts the call once it has decoded the body, a few microtasks after 'end'.
      setImmediate(() => {
        record.method = this.newlyCounted();
      });
    });
  };

  private readonly onFinish = (message: unknown): void => {
    const { response } = message as { response: ServerResponse };
    const record = this.open.get(response);
    if (record === undefined) return;
    this.open.delete(response);
    record.end = performance.now();
  };

  private newlyCounted(): string {
    const now = this.counters().calls;
    let found = '?';
    for (const [method, n] of Object.entries(now)) {
      if (n > (this.lastCounts[method] ?? 0)) {
        found = method;
        this.lastCounts[method] = (this.lastCounts[method] ?? 0) + 1;
        break;
      }
    }
    return found;
  }
}

export interface OvsdbMessage {
  readonly dir: 'toServer' | 'toClient';
  /** First and last byte seen by the proxy (ms, bench clock). */
  readonly first: number;
  readonly last: number;
  readonly bytes: number;
  /** `method` of a request or notification; undefined for a reply. */
  readonly method: string | undefined;
  /** JSON-RPC id (a number for our client's requests and the server's replies; null for notifications). */
  readonly id: number | null | undefined;
  /** Which client connection (0, 1, … in accept order). */
  readonly conn: number;
}

/** Splits a byte stream into top-level JSON values (ovsdb-server and our client send objects back to back). */
class Framer {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private first = Number.NaN;
  private bytes = 0;
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail = '';

  constructor(private readonly emit: (first: number, last: number, bytes: number, head: string, tail: string) => void) {}

  push(chunk: Buffer, at: number): void {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.depth === 0 && c !== 0x7b && c !== 0x5b) continue;
      if (this.depth === 0) {
        this.first = at;
        this.bytes = 0;
        this.head = [];
        this.headBytes = 0;
        start = i;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 0) {
          this.take(chunk.subarray(start, i + 1));
          this.emit(this.first, at, this.bytes, Buffer.concat(this.head).toString('utf8', 0, 160), this.tail);
          start = i + 1;
        }
      }
    }
    if (this.depth > 0) this.take(chunk.subarray(start));
  }

  private take(part: Buffer): void {
    this.bytes += part.length;
    if (this.headBytes < 160) {
      this.head.push(part.subarray(0, 160 - this.headBytes));
      this.headBytes += Math.min(part.length, 160 - this.headBytes);
    }
    this.tail = (this.tail + part.subarray(Math.max(0, part.length - 40)).toString('latin1')).slice(-40);
  }
}

function classify(head: string, tail: string): { method: string | undefined; id: number | null | undefined } {
  const method = /"method":"([^"]+)"/.exec(head)?.[1];
  const idText = /^\{"id":(null|\d+)/.exec(head)?.[1] ?? /"id":(null|\d+)\}$/.exec(tail)?.[1];
  const id = idText === undefined ? undefined : idText === 'null' ? null : Number(idText);
  return { method, id };
}

/**
 * A pass-through proxy in front of ovsdb-server's unix socket: the server's socket file is renamed and
 * the proxy listens on the original path, so clients that connect from now on (the daemon) go through
 * it while connections already open (the bench's own clients) stay direct. Records every message with
 * the time its first and last byte passed.
 */
export class OvsdbTap {
  readonly messages: OvsdbMessage[] = [];
  private readonly sockets = new Set<Socket>();
  private connections = 0;

  private constructor(
    private readonly server: Server,
    private readonly path: string,
    private readonly realPath: string,
  ) {}

  static async start(socketPath: string): Promise<OvsdbTap> {
    const realPath = `${socketPath}.real`;
    renameSync(socketPath, realPath);
    const server = createServer();
    const tap = new OvsdbTap(server, socketPath, realPath);
    server.on('connection', (client: Socket) => {
      tap.accept(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, resolve);
    });
    return tap;
  }

  /** Puts ovsdb-server's socket back where it was (the proxy stops accepting). */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => { resolve(); }));
    renameSync(this.realPath, this.path);
  }

  private accept(client: Socket): void {
    const conn = this.connections++;
    const upstream = createConnection({ path: this.realPath });
    this.sockets.add(client).add(upstream);
    const record = (dir: OvsdbMessage['dir']): Framer =>
      new Framer((first, last, bytes, head, tail) => {
        this.messages.push({ dir, first, last, bytes, ...classify(head, tail), conn });
      });
    const up = record('toServer');
    const down = record('toClient');
    client.on('data', (chunk: Buffer) => {
      up.push(chunk, performance.now());
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      down.push(chunk, performance.now());
      client.write(chunk);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  }
}

export interface ProcSample {
  readonly at: number;
  readonly daemonCpu: number;
  readonly daemonRss: number;
  readonly serverCpu: number;
}

/** CPU seconds and RSS of the daemon (and CPU of ovsdb-server) every `everyMs`, from /proc. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly daemonPid: number,
    private readonly serverPid: number,
    everyMs = 20,
  ) {
    this.sample();
    this.timer = setInterval(() => {
      this.sample();
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  /** The last sample taken at or before `at` (the first one if none). */
  at(at: number): ProcSample {
    let best = this.samples[0]!;
    for (const s of this.samples) {
      if (s.at > at) break;
      best = s;
    }
    return best;
  }

  peakRss(from: number, to: number): number {
    let peak = 0;
    for (const s of this.samples) if (s.at >= from && s.at <= to) peak = Math.max(peak, s.daemonRss);
    return peak;
  }

  private sample(): void {
    try {
      this.samples.push({ at: performance.now(), daemonCpu: cpuSeconds(this.daemonPid), daemonRss: rssMb(this.daemonPid), serverCpu: cpuSeconds(this.serverPid) });
    } catch {
      // The process is gone: the samples so far stand.
    }
  }
}
