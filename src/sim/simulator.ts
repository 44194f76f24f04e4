import { SimApi } from './api.js';
import { controlHandler } from './control.js';
import { rpcHandler, type EndpointContext, type EndpointCounters, type EndpointFaults } from './endpoint.js';
import { generateFixture, loadFixture, type Fixture } from './fixture.js';
import { createIdSource } from './ids.js';
import { SimLifecycle, type PortInfo } from './lifecycle.js';
import { Listener, type TlsFiles } from './listener.js';
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
  /**
   * A TCP login needs these credentials (a wrong one fails after `loginFailureDelayMs`); the unix
   * socket accepts any, as dom0's does. Without them any login is accepted (a test convenience).
   */
  readonly credentials?: { readonly user: string; readonly password: string };
  /** Seed of the deterministic uuid/ref/MAC source. */
  readonly seed?: number;
  /** Serve the TCP listener over TLS with this PEM key and certificate (`url` is then `https://`). */
  readonly tls?: TlsFiles;
  /**
   * A failed TCP login answers after this delay (ms). Default 5000: xapi sleeps 5 s before it
   * raises an authentication failure (`thread_delay_and_raise_error`, xapi_session.ml:1025-1028).
   */
  readonly loginFailureDelayMs?: number;
  /**
   * Pool-member mode: every fixture host gets its own endpoint at 127.0.0.(2+index), all on one
   * port (host.address is that IP, so `HOST_IS_SLAVE [address]` leads a client to the master by
   * hostname, as on a real pool). Host 0 starts as master; `thisHost` (index, default 0) is the host
   * the daemon runs on: `url`, `unix` and `thisHost` belong to it. See `Simulator.pool`.
   */
  readonly pool?: { readonly thisHost?: number };
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
  /** Every call fails with HOST_STILL_BOOTING (XAPI emergency mode, docs/xapi.md §1.2). */
  hostStillBooting: boolean;
  /** POST /jsonrpc answers HTTP 404 (a host without a JSON-RPC handler). Default false. */
  jsonRpcNotFound?: boolean;
  /** `event.inject` answers MESSAGE_METHOD_UNKNOWN, as on hosts older than the call. Default false. */
  injectUnknown?: boolean;
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

/** A VIF of a VM running on this host, with what its OVSDB port `vif<domid>.<device>` needs. */
export type LocalVif = PortInfo;

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
  /** event.from calls still blocked although their client went away (xapi_event.ml:438-458). */
  readonly abandonedWaiters: number;
  /** event.from calls ever abandoned by their client (each one is a re-issue left behind). */
  readonly abandonedWaitersTotal: number;
  /**
   * xapi restarted on an older database: the generation goes back by `generations` (tokens the
   * clients hold are now ahead of it) and every session dies (sessions are PersistNothing).
   */
  restartOnOlderDatabase(generations: number): void;
  /** Pool-member mode (`options.pool`); undefined otherwise. */
  readonly pool: SimPool | undefined;
  /** Lifecycle operations that change fields in xapi's order (see lifecycle.ts). */
  readonly lifecycle: SimLifecycle;
  close(): Promise<void>;
}

export interface SimPool {
  /** URL of the current master's endpoint. */
  readonly masterUrl: string;
  /** URL of a host's endpoint (index, ref or uuid). */
  hostUrl(host: number | string): string;
  /** Stops (true) or restarts (false) one host's endpoint. */
  setHostDown(host: number | string, down: boolean): Promise<void>;
  /** Makes a host the master (`pool.designate_new_master` / emergency transition): pool.master changes. */
  promote(host: number | string): void;
}

/** One host's HTTP endpoint: a TCP listener and, for this host, the unix socket. */
interface HostEndpoint {
  readonly hostRef: string;
  readonly tcp: Listener | undefined;
  readonly unix: Listener | undefined;
}

async function startPoolEndpoints(ctx: EndpointContext, hostRefs: readonly string[], thisIndex: number, options: SimulatorOptions): Promise<HostEndpoint[]> {
  for (let attempt = 0; ; attempt += 1) {
    const endpoints: HostEndpoint[] = [];
    let port = options.listen?.port ?? 0;
    try {
      for (const [i, hostRef] of hostRefs.entries()) {
        const tcp = new Listener(rpcHandler(ctx, () => hostRef, 'tcp'), { host: `127.0.0.${String(2 + i)}`, port }, options.tls);
        endpoints.push({ hostRef, tcp, unix: i === thisIndex && options.unix !== undefined ? new Listener(rpcHandler(ctx, () => hostRef, 'unix'), { path: options.unix }) : undefined });
        await tcp.start();
        const a = tcp.address();
        if (typeof a === 'object' && a !== null) port = a.port;
      }
      for (const e of endpoints) await e.unix?.start();
      return endpoints;
    } catch (err) {
      for (const e of endpoints) await e.tcp?.stop();
      // Another process holds the port on one of the addresses: try another ephemeral port.
      if (attempt >= 5 || options.listen?.port !== undefined) throw err;
    }
  }
}

/** Starts the XAPI simulator. See docs/design.md §11 and docs/xapi.md for the behaviour it copies. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const ids = createIdSource(options.seed);
  const state = new SimState(ids);
  const fixture = options.fixture ?? generateFixture(options.generate ?? { vms: 0, vifsPerVm: 0, hosts: 1 });
  const master = loadFixture(state, fixture);
  const hostRows = state.all('host');
  const thisIndex = options.pool?.thisHost ?? 0;
  const thisRow = hostRows[thisIndex];
  if (thisRow === undefined) throw new RangeError(`pool.thisHost ${String(thisIndex)} is not a fixture host index`);
  const thisHost = options.pool === undefined ? master : { ref: thisRow.ref, uuid: thisRow.uuid };

  const settings: SimFaultSettings & EndpointFaults = {
    down: false,
    latencyMs: 0,
    malformedEvery: 0,
    http500: false,
    eventFromHang: false,
    hostStillBooting: false,
    jsonRpcNotFound: false,
    injectUnknown: false,
  };
  const api = new SimApi({
    state,
    ids,
    credentials: options.credentials,
    loginFailureDelayMs: options.loginFailureDelayMs ?? 5000,
    eventDelayMs: options.eventDelayMs ?? 5,
    eventFromHang: () => settings.eventFromHang,
    injectUnknown: () => settings.injectUnknown === true,
  });
  const counters: EndpointCounters = { calls: {}, totalCalls: 0, bytesIn: 0, bytesOut: 0, replies: 0 };
  const ctx: EndpointContext = { api, state, faults: settings, counters };

  let endpoints: HostEndpoint[];
  if (options.pool !== undefined) {
    endpoints = await startPoolEndpoints(ctx, hostRows.map((h) => h.ref), thisIndex, options);
    for (const e of endpoints) {
      const a = e.tcp?.address();
      if (typeof a === 'object' && a !== null) state.setHostAddress(e.hostRef, a.address);
    }
  } else {
    const tcp = options.listen !== undefined || options.unix === undefined ? new Listener(rpcHandler(ctx, () => master.ref, 'tcp'), options.listen ?? { host: '127.0.0.1', port: 0 }, options.tls) : undefined;
    const unix = options.unix !== undefined ? new Listener(rpcHandler(ctx, () => master.ref, 'unix'), { path: options.unix }) : undefined;
    await tcp?.start();
    await unix?.start();
    endpoints = [{ hostRef: master.ref, tcp, unix }];
  }
  const endpointOf = (host: number | string): HostEndpoint => {
    const row = typeof host === 'number' ? hostRows[host] : state.resolve('host', host);
    const e = endpoints.find((x) => x.hostRef === row?.ref);
    if (e === undefined) throw new RangeError(`no endpoint for host ${String(host)}`);
    return e;
  };
  const thisEndpoint = options.pool === undefined ? endpoints[0] : endpointOf(thisIndex);
  const downHosts = new Set<string>();

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
    get jsonRpcNotFound() {
      return settings.jsonRpcNotFound;
    },
    get injectUnknown() {
      return settings.injectUnknown;
    },
    async set(patch) {
      const { down, jsonRpcNotFound, injectUnknown, ...rest } = patch;
      Object.assign(settings, rest);
      if (jsonRpcNotFound !== undefined) settings.jsonRpcNotFound = jsonRpcNotFound;
      if (injectUnknown !== undefined) settings.injectUnknown = injectUnknown;
      if (down !== undefined && down !== settings.down) {
        settings.down = down;
        for (const e of endpoints) {
          if (down) {
            await e.tcp?.stop();
            await e.unix?.stop();
          } else if (!downHosts.has(e.hostRef)) {
            await e.tcp?.start();
            await e.unix?.start();
          }
        }
      }
      // Wake blocked event.from waiters so that a cleared hang takes effect at once.
      state.notify();
    },
    invalidateSessions: () => { api.invalidateSessions(); },
  };

  const pool: SimPool | undefined =
    options.pool === undefined
      ? undefined
      : {
          get masterUrl() {
            return endpointOf(state.masterRef()).tcp?.url() ?? '';
          },
          hostUrl: (host) => endpointOf(host).tcp?.url() ?? '',
          async setHostDown(host, down) {
            const e = endpointOf(host);
            if (down) {
              downHosts.add(e.hostRef);
              await e.tcp?.stop();
              await e.unix?.stop();
            } else {
              downHosts.delete(e.hostRef);
              if (!settings.down) {
                await e.tcp?.start();
                await e.unix?.start();
              }
            }
          },
          promote(host) {
            state.setMaster(endpointOf(host).hostRef);
          },
        };

  const sim: Simulator = {
    url: thisEndpoint?.tcp?.url(),
    unixPath: options.unix,
    get controlUrl() {
      return controlUrl;
    },
    state,
    faults,
    get counters(): SimCounters {
      return { calls: { ...counters.calls }, totalCalls: counters.totalCalls, bytesIn: counters.bytesIn, bytesOut: counters.bytesOut };
    },
    resetCounters() {
      counters.calls = {};
      counters.totalCalls = 0;
      counters.bytesIn = 0;
      counters.bytesOut = 0;
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
    get abandonedWaiters() {
      return api.abandonedWaiters;
    },
    get abandonedWaitersTotal() {
      return api.abandonedWaitersTotal;
    },
    restartOnOlderDatabase(generations) {
      state.rewind(generations);
      api.invalidateSessions();
    },
    pool,
    lifecycle: new SimLifecycle(state),
    async close() {
      settings.eventFromHang = false;
      await control?.stop();
      for (const e of endpoints) {
        await e.tcp?.stop();
        await e.unix?.stop();
      }
      api.close();
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
