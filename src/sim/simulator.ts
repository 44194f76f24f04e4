import { existsSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { jsonRpcCodec } from '../xapi/codec/jsonrpc.js';
import { XAPI_MAX_REQUEST_BYTES } from '../xapi/codec/limits.js';
import type { XapiCall, XapiWireCodec } from '../xapi/codec/types.js';
import { encodeXmlRpcBareResponse, xmlRpcCodec } from '../xapi/codec/xmlrpc.js';
import { SimAborted, SimApi, SimFailure } from './api.js';
import { controlHandler } from './control.js';
import { generateFixture, loadFixture, type Fixture } from './fixture.js';
import { createIdSource } from './ids.js';
import { SimState, type SimClass } from './state.js';

const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

export interface SimulatorOptions {
  /** TCP listener; port 0 = ephemeral. Default: 127.0.0.1:0 unless only `unix` is given. */
  readonly listen?: { readonly host: string; readonly port: number };
  /** Unix-domain socket path (like /var/lib/xcp/xapi). */
  readonly unix?: string;
  readonly fixture?: Fixture;
  readonly generate?: { readonly vms: number; readonly vifsPerVm: number; readonly hosts?: number };
  /** Small HTTP JSON endpoint for faults, counters and state changes. */
  readonly controlListen?: { readonly host: string; readonly port: number };
  /** event.from batching delay (XAPI: 50 ms). Default 5 ms. */
  readonly eventDelayMs?: number;
  /** Require these login credentials (default: any, like XAPI's local socket). */
  readonly credentials?: { readonly user: string; readonly password: string };
  /** Seed of the deterministic uuid/ref/MAC source. */
  readonly seed?: number;
  /** Serve the TCP listener over TLS with this PEM key and certificate (`url` is then `https://`). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
}

export interface SimFaultSettings {
  /** Listeners refuse connections (closed, open sockets destroyed); false brings them back. */
  down: boolean;
  latencyMs: number;
  /** Every Nth reply body is truncated (0 = off). */
  malformedEvery: number;
  /** true = every call answers HTTP 500; a number K = the next K calls; false/0 = off. */
  http500: boolean | number;
  /** event.from never returns until cleared. */
  eventFromHang: boolean;
  /** Every call fails with HOST_STILL_BOOTING (XAPI emergency mode, reference §1.2). */
  hostStillBooting: boolean;
}

export interface SimFaults extends Readonly<SimFaultSettings> {
  set(patch: Partial<SimFaultSettings>): Promise<void>;
  invalidateSessions(): void;
}

export interface SimCounters {
  readonly calls: Readonly<Record<string, number>>;
  readonly totalCalls: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface LocalVif {
  readonly vifUuid: string;
  readonly vmUuid: string;
  readonly networkUuid: string;
  readonly bridge: string;
  readonly mac: string;
  readonly device: string;
  readonly domid: number;
}

export interface Simulator {
  /** `http://HOST:PORT` of the TCP listener (undefined when only a unix socket is served). */
  readonly url: string | undefined;
  readonly unixPath: string | undefined;
  readonly controlUrl: string | undefined;
  readonly state: SimState;
  readonly faults: SimFaults;
  readonly counters: SimCounters;
  resetCounters(): void;
  /** This host (host 0): what `session.get_this_host` returns. */
  readonly thisHost: { readonly ref: string; readonly uuid: string };
  /** VIFs of VMs resident on this host, with what an OVSDB port `vif<domid>.<device>` needs. */
  localVifs(): LocalVif[];
  readonly sessionCount: number;
  /** Every session ref login has handed out, oldest first. */
  readonly issuedSessions: readonly string[];
  invalidateSessions(): void;
  close(): Promise<void>;
}

/** XAPI's reply to a request it cannot parse: HTTP 500 with an HTML body (reference §1.4). */
const HTTP_500_BODY =
  '<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while and try again. If the problem persists, please contact your support representative.</body></html>';

function sendHtml500(res: http.ServerResponse): number {
  res.writeHead(500, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(HTTP_500_BODY) });
  res.end(HTTP_500_BODY);
  return Buffer.byteLength(HTTP_500_BODY);
}

class Listener {
  private server: http.Server | undefined;
  constructor(
    private readonly handler: http.RequestListener,
    private readonly where: { host: string; port: number } | { path: string },
    private readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer },
  ) {}

  address(): AddressInfo | string | null {
    return this.server?.address() ?? null;
  }

  async start(): Promise<void> {
    if (this.server !== undefined) return;
    if ('path' in this.where && existsSync(this.where.path)) unlinkSync(this.where.path);
    const server = this.tls !== undefined ? https.createServer({ keepAlive: true, ...this.tls }, this.handler) : http.createServer({ keepAlive: true }, this.handler);
    // XAPI keeps persistent connections (reference §1.3, CP-48623).
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
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
    server.closeAllConnections();
    await closed;
  }
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => { resolve(tooBig ? undefined : Buffer.concat(chunks).toString('utf8')); });
    req.on('error', () => { resolve(undefined); });
  });
}

/** Starts the XAPI simulator. See DESIGN.md §5 and reference/xapi.md for the behaviour it copies. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const ids = createIdSource(options.seed);
  const state = new SimState(ids);
  const fixture = options.fixture ?? generateFixture(options.generate ?? { vms: 0, vifsPerVm: 0, hosts: 1 });
  const thisHost = loadFixture(state, fixture);

  const settings: SimFaultSettings = { down: false, latencyMs: 0, malformedEvery: 0, http500: false, eventFromHang: false, hostStillBooting: false };
  const api = new SimApi({
    state,
    ids,
    thisHostRef: thisHost.ref,
    credentials: options.credentials,
    eventDelayMs: options.eventDelayMs ?? 5,
    eventFromHang: () => settings.eventFromHang,
  });

  let calls: Record<string, number> = {};
  let totalCalls = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  let replies = 0;

  const reply = (res: http.ServerResponse, codec: XapiWireCodec, body: string): void => {
    replies += 1;
    const out = settings.malformedEvery > 0 && replies % settings.malformedEvery === 0 ? body.slice(0, Math.floor(body.length / 2)) : body;
    const length = Buffer.byteLength(out);
    bytesOut += length;
    res.writeHead(200, { 'content-type': codec.contentType, 'content-length': length, 'access-control-allow-origin': '*' });
    res.end(out);
  };

  const handleRpc = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const body = await readBody(req, XAPI_MAX_REQUEST_BYTES);
    if (body !== undefined) bytesIn += Buffer.byteLength(body);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    // Longest-prefix match: /jsonrpc → JSON-RPC, every other path → XML-RPC (reference §1.1).
    const codec = path.startsWith('/jsonrpc') ? jsonRpcCodec : xmlRpcCodec;
    if (settings.http500 === true || (typeof settings.http500 === 'number' && settings.http500 > 0)) {
      if (typeof settings.http500 === 'number') settings.http500 -= 1;
      totalCalls += 1;
      bytesOut += sendHtml500(res);
      return;
    }
    if (body === undefined || req.method !== 'POST') {
      bytesOut += sendHtml500(res);
      return;
    }
    let call: XapiCall;
    try {
      call = codec.decodeCall(body);
    } catch {
      bytesOut += sendHtml500(res);
      return;
    }
    totalCalls += 1;
    calls[call.method] = (calls[call.method] ?? 0) + 1;
    const abort = new AbortController();
    res.on('close', () => { abort.abort(); });
    if (settings.latencyMs > 0) await new Promise((r) => setTimeout(r, settings.latencyMs));
    if (settings.hostStillBooting) {
      // Raised before dispatch: JSON-RPC answers in the odd V2 array form without the id (reference §1.4).
      reply(res, codec, codec.encodeFailure('HOST_STILL_BOOTING', [], codec === jsonRpcCodec ? undefined : call));
      return;
    }
    try {
      const result = await api.handle(call, abort.signal);
      if (abort.signal.aborted) return;
      reply(res, codec, result.bare === true && codec === xmlRpcCodec ? encodeXmlRpcBareResponse(result.value) : codec.encodeSuccess(result.value, call));
    } catch (err) {
      if (err instanceof SimAborted || abort.signal.aborted) return;
      if (err instanceof SimFailure) reply(res, codec, codec.encodeFailure(err.code, err.params, call));
      else reply(res, codec, codec.encodeFailure('INTERNAL_ERROR', [err instanceof Error ? err.message : 'unknown'], call));
    }
  };

  const rpcHandler: http.RequestListener = (req, res) => {
    handleRpc(req, res).catch(() => {
      if (!res.headersSent) sendHtml500(res);
      else res.destroy();
    });
  };

  const tcp = options.listen !== undefined || options.unix === undefined ? new Listener(rpcHandler, options.listen ?? { host: '127.0.0.1', port: 0 }, options.tls) : undefined;
  const unix = options.unix !== undefined ? new Listener(rpcHandler, { path: options.unix }) : undefined;
  await tcp?.start();
  await unix?.start();
  const tcpAddress = tcp?.address();
  // `down` must come back on the same port, even when the first one was ephemeral.
  const tcpWhere = typeof tcpAddress === 'object' && tcpAddress !== null ? { host: tcpAddress.address, port: tcpAddress.port } : undefined;
  const tcpAgain = tcpWhere !== undefined ? new Listener(rpcHandler, tcpWhere, options.tls) : undefined;
  let tcpCurrent = tcp;

  const faults: SimFaults = {
    get down() {
      return settings.down;
    },
    get latencyMs() {
      return settings.latencyMs;
    },
    get malformedEvery() {
      return settings.malformedEvery;
    },
    get http500() {
      return settings.http500;
    },
    get eventFromHang() {
      return settings.eventFromHang;
    },
    get hostStillBooting() {
      return settings.hostStillBooting;
    },
    async set(patch) {
      const { down, ...rest } = patch;
      Object.assign(settings, rest);
      if (down !== undefined && down !== settings.down) {
        settings.down = down;
        if (down) {
          await tcpCurrent?.stop();
          await unix?.stop();
        } else {
          tcpCurrent = tcpAgain;
          await tcpCurrent?.start();
          await unix?.start();
        }
      }
      // Wake blocked event.from waiters so that a cleared hang takes effect at once.
      state.notify();
    },
    invalidateSessions: () => { api.invalidateSessions(); },
  };

  const sim: Simulator = {
    url: tcpWhere !== undefined ? `${options.tls !== undefined ? 'https' : 'http'}://${tcpWhere.host.includes(':') ? `[${tcpWhere.host}]` : tcpWhere.host}:${tcpWhere.port}` : undefined,
    unixPath: options.unix,
    get controlUrl() {
      return controlUrl;
    },
    state,
    faults,
    get counters(): SimCounters {
      return { calls: { ...calls }, totalCalls, bytesIn, bytesOut };
    },
    resetCounters() {
      calls = {};
      totalCalls = 0;
      bytesIn = 0;
      bytesOut = 0;
    },
    thisHost,
    localVifs() {
      const out: LocalVif[] = [];
      for (const vif of state.all('VIF')) {
        const vm = state.byRef('VM', text(vif.fields.VM));
        const net = state.byRef('network', text(vif.fields.network));
        if (vm?.fields.resident_on !== thisHost.ref || net === undefined || vm.fields.power_state !== 'Running') continue;
        out.push({
          vifUuid: vif.uuid,
          vmUuid: vm.uuid,
          networkUuid: net.uuid,
          bridge: text(net.fields.bridge),
          mac: text(vif.fields.MAC),
          device: text(vif.fields.device),
          domid: Number(vm.fields.domid),
        });
      }
      return out;
    },
    get issuedSessions() {
      return [...api.issuedSessions];
    },
    get sessionCount() {
      return api.sessionCount;
    },
    invalidateSessions: () => { api.invalidateSessions(); },
    async close() {
      settings.eventFromHang = false;
      await control?.stop();
      await tcpCurrent?.stop();
      await unix?.stop();
    },
  };

  let control: Listener | undefined;
  let controlUrl: string | undefined;
  if (options.controlListen !== undefined) {
    control = new Listener(controlHandler(sim), options.controlListen);
    await control.start();
    const a = control.address();
    if (typeof a === 'object' && a !== null) controlUrl = `http://${a.address}:${a.port}`;
  }
  return sim;
}

export type { SimClass };
