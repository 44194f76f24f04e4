/**
 * A whole hypervisor in a temp dir, for daemon-level tests, the demo and the benchmark: a real
 * ovsdb-server (the sandbox), the XAPI simulator, a root prefix with `/etc/xensource-inventory` and the
 * XAPI init cookie, an `$OVS_RUNDIR`, helpers that act like the hotplug scripts, and the daemon as a
 * child process (`node <repo>/dist/bin/ovs-xapi-sync.js`: run `npm run build` first; `npm test` and `npm run demo` do).
 *
 * This module lives in src/ so that the demo, which runs from dist/, can use it; the tests reach it
 * through `test/helpers/host-env.ts`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CodedError } from '../errors.js';
import { generateFixture, startSimulator, type Fixture, type Simulator } from '../sim/index.js';
import { startOvsdbSandbox, type OvsdbSandbox } from './ovsdb-server.js';

const execFileAsync = promisify(execFile);

/** `HOST_ENV`: the harness cannot be set up; `WAIT_TIMEOUT`: `waitFor` gave up. Harness-only codes. */
export class HostEnvError extends CodedError<'HOST_ENV' | 'WAIT_TIMEOUT'> {}

/**
 * The repository (or installed package) root: the nearest ancestor with a package.json. This module
 * runs as src/sandbox (vitest), dist/sandbox (the demo) and dist-bench/src/sandbox (the benchmark).
 */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    dir = resolve(dir, '..');
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new HostEnvError('HOST_ENV', `cannot find the repository root above ${fileURLToPath(import.meta.url)}`);
}

export const REPO_ROOT = findRepoRoot();
/** The built daemon: the bundle the package ships (scripts/package/bundle.mjs); the harness never builds it. */
export const CLI = join(REPO_ROOT, 'dist', 'bin', 'ovs-xapi-sync.js');

/**
 * The daemon's chunk of the bundle next to {@link CLI} (scripts/package/bundle.mjs): every module of the
 * daemon, which importing loads without running it (the footprint test, the bench's RSS floor).
 */
export function daemonChunk(): string {
  const chunk = readdirSync(dirname(CLI)).find((f) => /^main-\w+\.js$/.test(f));
  if (chunk === undefined) throw new Error(`no daemon chunk next to ${CLI}: run npm run build`);
  return join(dirname(CLI), chunk);
}

/**
 * The V8 options the daemon runs with, exactly as `systemd/ovs-xapi-sync.service` starts it (a test
 * checks the unit): a small young generation, because a daemon that idles between bursts should not
 * keep V8's default 16 MiB semi-spaces resident on a memory-tight dom0 (stress bench: RSS 143 -> 113
 * MB, cold start and CPU no worse). The daemon itself turns on V8's memory-saver mode once the cold start
 * is over (src/health/heap-mode.ts; docs/platform.md §7 has the options measured and why they are not
 * here). `OXS_DAEMON_NODE_ARGS` overrides it for experiments.
 */
export const DAEMON_NODE_ARGS: readonly string[] = (process.env.OXS_DAEMON_NODE_ARGS ?? '--max-semi-space-size=2').split(' ').filter((a) => a !== '');

/**
 * The environment the unit sets for the daemon, likewise checked against it. glibc gives each thread
 * that allocates an arena of its own (up to 8 per core); node's libuv and V8 worker threads then keep
 * several partly used arenas resident. Two are enough for one JavaScript thread.
 */
export const DAEMON_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

export const INSTALLATION_UUID = '0b1e7a55-1a57-4a11-9a11-000000000001';

/**
 * The XAPI protocol of every daemon the harness starts (and of the tests' own XAPI clients):
 * `OXS_TEST_XAPI_PROTOCOL`, `jsonrpc` (the default) or `xmlrpc`, so that CI runs the integration suite
 * once per protocol. A daemon started with its own `--xapi-protocol` (or the environment variable)
 * keeps it.
 */
export const TEST_XAPI_PROTOCOL: 'jsonrpc' | 'xmlrpc' = testXapiProtocol(process.env.OXS_TEST_XAPI_PROTOCOL);

function testXapiProtocol(value: string | undefined): 'jsonrpc' | 'xmlrpc' {
  if (value === undefined || value === '' || value === 'jsonrpc') return 'jsonrpc';
  if (value === 'xmlrpc') return 'xmlrpc';
  throw new HostEnvError('HOST_ENV', `OXS_TEST_XAPI_PROTOCOL must be jsonrpc or xmlrpc, not ${JSON.stringify(value)}`);
}

/** Whether a test chose the daemon's protocol itself. */
function choosesProtocol(options: DaemonOptions): boolean {
  return (options.args ?? []).some((a) => a === '--xapi-protocol' || a.startsWith('--xapi-protocol=')) || options.env?.OVS_XAPI_SYNC_XAPI_PROTOCOL !== undefined;
}

export type LocalVif = ReturnType<Simulator['localVifs']>[number];

export interface HostEnvOptions {
  readonly vms?: number;
  readonly vifsPerVm?: number;
  readonly hosts?: number;
  /** Write the XAPI init cookie at start (default true). */
  readonly xapiReady?: boolean;
  /** Listen on a unix socket too and give the daemon `unix:` (default: TCP). */
  readonly xapiOverUnix?: boolean;
  readonly eventDelayMs?: number;
  /** Make the simulator require these login credentials (default: any, like XAPI's local socket). */
  readonly credentials?: { readonly user: string; readonly password: string };
  /**
   * This host is a pool member (host 1 of at least two) and the daemon is given its http address, which
   * answers a login with HOST_IS_SLAVE [master] as a member does (docs/xapi.md §8). Default: this host
   * is the master (host 0).
   */
  readonly poolMember?: boolean;
}

export interface DaemonOptions {
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Default 'debug' so tests can wait for debug lines. */
  readonly logLevel?: string;
  /** Add `--pidfile` (default true). */
  readonly pidfile?: boolean;
  /** Health endpoint on an ephemeral loopback port (default true). */
  readonly health?: boolean;
  /** Append the daemon's raw stdout and stderr to this file as they arrive. */
  readonly logFile?: string;
  /** Called with each parsed JSON log line as it arrives (before `waitForLog` waiters are served). */
  readonly onLog?: (line: LogLine) => void;
  /** Node options placed before the script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  readonly nodeArgs?: readonly string[];
}

export interface LogLine {
  readonly level: number;
  readonly msg?: string;
  readonly component?: string;
  readonly [key: string]: unknown;
}

export interface Daemon {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Parsed JSON log lines so far. */
  readonly logs: LogLine[];
  /** Raw stdout and stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first log line matching, or rejects after `timeoutMs`. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** The health endpoint's base URL (after it logged that it listens). */
  healthUrl(): Promise<string>;
  /** The control socket path (default name under the env's `OVS_RUNDIR`). */
  readonly controlPath: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and resolves with the exit status and how long it took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

export interface HostEnv {
  /** The temp dir holding `root`, `rundir` and the XAPI socket (the ovsdb sandbox has its own, `db.dir`). */
  readonly dir: string;
  readonly db: OvsdbSandbox;
  readonly sim: Simulator;
  /** `--root-prefix` */
  readonly root: string;
  /** `$OVS_RUNDIR` for the daemon and ovs-appctl. */
  readonly rundir: string;
  /** The `--xapi` URL the daemon gets. */
  readonly xapiUrl: string;
  readonly vifs: readonly LocalVif[];
  writeXapiCookie(): void;
  /** Adds the bridges of every local VIF's network (ovs-vsctl add-br, as xcp-networkd does). */
  addBridges(): Promise<void>;
  /** Plugs `vif<domid>.<device>` with the four keys the hotplug script writes, plus `extra` keys. */
  plugVif(vif: LocalVif, extra?: Readonly<Record<string, string>>): Promise<string>;
  /** Plugs the HVM twin `tap<domid>.<device>` (no xs keys: the daemon copies them). */
  plugTap(vif: LocalVif): Promise<string>;
  unplug(name: string): Promise<void>;
  /** `ovs-vsctl get TABLE RECORD COLUMN:KEY`, unquoted; undefined when the key is absent. */
  getKey(table: string, record: string, column: string, key: string): Promise<string | undefined>;
  /** A whole map column as an object. */
  getMap(table: string, record: string, column: string): Promise<Record<string, string>>;
  /** `ovs-vsctl get TABLE RECORD COLUMN`, unquoted (`[]` for an empty optional column). */
  getColumn(table: string, record: string, column: string): Promise<string>;
  startDaemon(options?: DaemonOptions): Daemon;
  /** `ovs-appctl` with this env's `OVS_RUNDIR`; resolves with exit code and output. */
  appctl(target: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /**
   * SIGKILLs daemons still running, stops the simulator and ovsdb-server, removes the temp dirs.
   * With `keep`, `dir` stays (with a copy of the ovsdb-server log) for a post-mortem.
   */
  close(options?: { readonly keep?: boolean }): Promise<void>;
}

const abortReason = (signal: AbortSignal): unknown => signal.reason ?? new HostEnvError('HOST_ENV', 'aborted');

/**
 * Polls `probe` every 25 ms until it returns a value other than undefined/false, or throws a
 * `WAIT_TIMEOUT` error naming `what` (and the probe's last error) after `timeoutMs`. Polling is the
 * point: it is for state that no event announces (another process's database rows). An abort of
 * `signal` rejects with the signal's reason.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  what = 'condition',
  signal?: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (signal?.aborted === true) throw abortReason(signal);
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new HostEnvError('WAIT_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

function unquote(text: string): string {
  const t = text.trim();
  if (t.startsWith('"') && t.endsWith('"')) return JSON.parse(t) as string;
  return t;
}

/** The generated pool, with this host's uuid the inventory's INSTALLATION_UUID, as on a real host. */
function hostFixture(options: HostEnvOptions): Fixture {
  const thisHost = options.poolMember === true ? 1 : 0;
  const fixture = generateFixture({ vms: options.vms ?? 2, vifsPerVm: options.vifsPerVm ?? 2, hosts: Math.max(thisHost + 1, options.hosts ?? 1) });
  return { ...fixture, hosts: fixture.hosts.map((h, i) => (i === thisHost ? { ...h, uuid: INSTALLATION_UUID } : h)) };
}

export async function startHostEnv(options: HostEnvOptions = {}): Promise<HostEnv> {
  const base = mkdtempSync(join(tmpdir(), 'oxs-host-'));
  const root = join(base, 'root');
  const rundir = join(base, 'run');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'var', 'run'), { recursive: true });
  mkdirSync(rundir, { recursive: true });
  writeFileSync(
    join(root, 'etc', 'xensource-inventory'),
    `INSTALLATION_UUID='${INSTALLATION_UUID}'\nPRODUCT_BRAND='XCP-ng'\nPRODUCT_VERSION='8.3.0'\nBUILD_NUMBER='release/yangtze/master/58'\n`,
  );
  let db: OvsdbSandbox;
  try {
    db = await startOvsdbSandbox();
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  const unixPath = join(base, 'xapi.sock');
  let sim: Simulator;
  try {
    sim = await startSimulator({
      fixture: hostFixture(options),
      ...(options.poolMember === true ? { pool: { thisHost: 1 } } : {}),
      listen: { host: '127.0.0.1', port: 0 },
      ...(options.xapiOverUnix === true ? { unix: unixPath } : {}),
      eventDelayMs: options.eventDelayMs ?? 2,
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    });
  } catch (err) {
    await db.stop();
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  const xapiUrl = options.xapiOverUnix === true ? `unix:${unixPath}` : sim.url;
  if (xapiUrl === undefined) {
    await sim.close();
    await db.stop();
    rmSync(base, { recursive: true, force: true });
    throw new HostEnvError('HOST_ENV', 'the simulator did not report a URL');
  }
  const cookie = join(root, 'var', 'run', 'xapi_init_complete.cookie');
  const writeXapiCookie = (): void => {
    writeFileSync(cookie, '');
  };
  if (options.xapiReady !== false) writeXapiCookie();
  const daemons: Daemon[] = [];
  const vifs = sim.localVifs();

  const env: HostEnv = {
    dir: base,
    db,
    sim,
    root,
    rundir,
    xapiUrl,
    vifs,
    writeXapiCookie,
    async addBridges() {
      const bridges = [...new Set(vifs.map((v) => v.bridge))];
      for (const bridge of bridges) await db.vsctl('--may-exist', 'add-br', bridge);
    },
    async plugVif(vif, extra = {}) {
      const name = `vif${vif.domid}.${vif.device}`;
      const keys = {
        'attached-mac': vif.mac,
        'xs-network-uuid': vif.networkUuid,
        'xs-vif-uuid': vif.vifUuid,
        'xs-vm-uuid': vif.vmUuid,
        ...extra,
      };
      await db.vsctl('--may-exist', 'add-br', vif.bridge);
      await db.vsctl(
        'add-port',
        vif.bridge,
        name,
        '--',
        'set',
        'Interface',
        name,
        ...Object.entries(keys).map(([k, v]) => `external_ids:${k}="${v}"`),
      );
      return name;
    },
    async plugTap(vif) {
      const name = `tap${vif.domid}.${vif.device}`;
      await db.vsctl('add-port', vif.bridge, name);
      return name;
    },
    async unplug(name) {
      await db.vsctl('--if-exists', 'del-port', name);
    },
    async getKey(table, record, column, key) {
      try {
        return unquote(await db.vsctl('get', table, record, `${column}:${key}`));
      } catch (err) {
        if (/no key/.test(String(err))) return undefined;
        throw err;
      }
    },
    async getMap(table, record, column) {
      const out = await db.vsctl('--format=json', '--data=json', `--columns=${column}`, 'list', table, record);
      const parsed = JSON.parse(out) as { data: [[string, [string, string][]]][] };
      const cell = parsed.data[0]?.[0];
      return Object.fromEntries(cell?.[1] ?? []);
    },
    async getColumn(table, record, column) {
      return unquote(await db.vsctl('get', table, record, column));
    },
    startDaemon(daemonOptions = {}) {
      const args = [
        ...DAEMON_NODE_ARGS,
        ...(daemonOptions.nodeArgs ?? []),
        CLI,
        db.remote,
        '--xapi',
        xapiUrl,
        '--root-prefix',
        root,
        '--log-level',
        daemonOptions.logLevel ?? 'debug',
        '--health',
        daemonOptions.health === false ? 'off' : '127.0.0.1:0',
        ...(choosesProtocol(daemonOptions) ? [] : ['--xapi-protocol', TEST_XAPI_PROTOCOL]),
        ...(daemonOptions.pidfile === false ? [] : ['--pidfile']),
        ...(daemonOptions.args ?? []),
      ];
      const child = spawn(process.execPath, args, {
        env: { ...process.env, ...DAEMON_ENV, OVS_RUNDIR: rundir, ...daemonOptions.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const daemon = wrapDaemon(child, rundir, daemonOptions);
      daemons.push(daemon);
      return daemon;
    },
    async appctl(target, ...args) {
      try {
        const { stdout, stderr } = await execFileAsync('ovs-appctl', ['-t', target, ...args], {
          env: { ...process.env, OVS_RUNDIR: rundir },
          timeout: 10_000,
        });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: unknown; stdout?: string; stderr?: string };
        return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    },
    async close(closeOptions = {}) {
      for (const d of daemons) {
        if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
        await d.exited;
      }
      await sim.close();
      if (closeOptions.keep === true && existsSync(db.logPath)) {
        try {
          copyFileSync(db.logPath, join(base, 'ovsdb-server.log'));
        } catch {
          // Best effort: a post-mortem aid only.
        }
      }
      await db.stop();
      if (closeOptions.keep !== true) rmSync(base, { recursive: true, force: true });
    },
  };
  return env;
}

function wrapDaemon(child: ChildProcess, rundir: string, options: DaemonOptions): Daemon {
  const logs: LogLine[] = [];
  let stdout = '';
  let stderr = '';
  let partial = '';
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const tee = (chunk: string): void => {
    if (options.logFile === undefined) return;
    try {
      appendFileSync(options.logFile, chunk);
    } catch {
      // The in-memory copy (stdout()/stderr()) is still complete.
    }
  };
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    stdout += chunk;
    tee(chunk);
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      if (text.trim() === '') continue;
      let line: LogLine;
      try {
        // journald priority prefixes (`<6>{…}`) are stripped if present.
        line = JSON.parse(text.replace(/^<\d>/, '')) as LogLine;
      } catch {
        continue;
      }
      logs.push(line);
      options.onLog?.(line);
      for (const w of [...waiters]) {
        if (w.match(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
    tee(chunk);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('exit', (code, signal) => {
      res({ code, signal });
    });
  });
  const waitForLog = (match: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const found = logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        const index = waiters.findIndex((w) => w.resolve === done);
        if (index >= 0) waiters.splice(index, 1);
        const tail = logs.slice(-8).map((l) => JSON.stringify(l).slice(0, 300)).join('\n');
        rej(new HostEnvError('WAIT_TIMEOUT', `timed out waiting for a log line; last lines:\n${tail}\nstderr: ${stderr.slice(-500)}`));
      }, timeoutMs);
      const done = (l: LogLine): void => {
        clearTimeout(timer);
        res(l);
      };
      waiters.push({ match, resolve: done });
    });
  };
  const pid = child.pid ?? -1;
  return {
    child,
    pid,
    logs,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForLog,
    async healthUrl() {
      const line = await waitForLog((l) => l.component === 'health' && typeof l.port === 'number');
      return `http://127.0.0.1:${String(line.port)}`;
    },
    controlPath: join(rundir, `ovs-xapi-sync.${String(pid)}.ctl`),
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const started = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const status = await exited;
      return { ...status, ms: Date.now() - started };
    },
  };
}
