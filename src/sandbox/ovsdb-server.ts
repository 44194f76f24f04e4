import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodedError } from '../errors.js';

export const DEFAULT_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const INSTALL_HINT = 'install Open vSwitch (apt-get install openvswitch-switch)';

export interface OvsdbSandboxOptions {
  /** Schema file (default the installed vswitch.ovsschema). */
  readonly schema?: string;
  /** Also listen on `ptcp:PORT:127.0.0.1` (the port is chosen free); `tcpRemote` is then set. */
  readonly tcp?: boolean;
  /** Skip `ovs-vsctl --no-wait init` (the Open_vSwitch row then does not exist). */
  readonly noInit?: boolean;
  /** How long to wait for the server to answer (default 10 s). */
  readonly startTimeoutMs?: number;
}

/**
 * A private ovsdb-server in a temp dir, for tests, the demo and the benchmark. The server is a child
 * process we own (never `--detach`), killed when `stop()` runs, when this process exits, and, through a
 * tiny watchdog that waits for EOF on a pipe from us, even when this process is SIGKILLed.
 */
export interface OvsdbSandbox {
  readonly dir: string;
  readonly dbPath: string;
  readonly socketPath: string;
  /** `unix:<socketPath>` */
  readonly remote: string;
  /** `tcp:127.0.0.1:PORT` when started with `tcp: true`. */
  readonly tcpRemote: string | undefined;
  readonly ctlPath: string;
  readonly logPath: string;
  /** The current server process id (changes on restart). */
  readonly pid: number;
  /** True while the server process is alive (also when paused). */
  readonly running: boolean;
  /** `ovs-vsctl --no-wait --db=unix:… ARGS`; resolves with stdout (trailing newline removed). */
  vsctl(...args: string[]): Promise<string>;
  /** `ovs-appctl -t <ctl> ARGS`; resolves with stdout (trailing newline removed). */
  appctl(...args: string[]): Promise<string>;
  /** Sends a signal; for SIGKILL/SIGTERM/SIGINT resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP: the server hangs with its sockets open. */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** Kills the server (if running) and starts a new one on the same database file; waits until it answers. */
  restart(): Promise<void>;
  /** Kills the server and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

function sandboxError(message: string, cause?: unknown): CodedError {
  return new CodedError('OVSDB_SANDBOX', message, { cause });
}

interface RunResult {
  readonly stdout: string;
}

function run(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: 20_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') reject(sandboxError(`${file} not found: ${INSTALL_HINT}`, err));
        else reject(sandboxError(`${file} ${args.join(' ')} failed: ${stderr.trim() || err.message}`, err));
        return;
      }
      resolve({ stdout });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export async function startOvsdbSandbox(options: OvsdbSandboxOptions = {}): Promise<OvsdbSandbox> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  if (!existsSync(schema)) throw sandboxError(`OVSDB schema ${schema} not found: ${INSTALL_HINT}`);
  const dir = await mkdtemp(join(tmpdir(), 'ovsdb-sbx-'));
  const dbPath = join(dir, 'conf.db');
  const socketPath = join(dir, 'db.sock');
  const ctlPath = join(dir, 'ovsdb-server.ctl');
  const logPath = join(dir, 'ovsdb-server.log');
  const pidPath = join(dir, 'ovsdb-server.pid');
  // Debian installs ovsdb-server in /usr/sbin, which an unprivileged user's PATH usually lacks.
  const path = [process.env.PATH ?? '', '/usr/sbin', '/sbin'].filter((p) => p !== '').join(':');
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: path, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
  const remote = `unix:${socketPath}`;
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  let tcpRemote: string | undefined;
  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderrTail = '';
  let stopped = false;

  const launch = async (): Promise<void> => {
    const args = [
      dbPath,
      `--remote=punix:${socketPath}`,
      `--unixctl=${ctlPath}`,
      `--pidfile=${pidPath}`,
      '--overwrite-pidfile',
      `--log-file=${logPath}`,
      '-vconsole:err',
      '--no-chdir',
    ];
    if (tcpRemote !== undefined) args.push(`--remote=p${tcpRemote.replace(/^tcp:127\.0\.0\.1:(\d+)$/, 'tcp:$1:127.0.0.1')}`);
    stderrTail = '';
    const proc = spawn('ovsdb-server', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const spawnError = new Promise<Error>((resolve) => proc.once('error', resolve));
    exited = new Promise((resolve) => {
      proc.once('exit', () => {
        live.delete(proc);
        resolve();
      });
      proc.once('error', () => {
        live.delete(proc);
        resolve();
      });
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-4000);
    });
    child = proc;
    if (proc.pid === undefined) {
      const err = await spawnError;
      const code = (err as NodeJS.ErrnoException).code;
      throw sandboxError(code === 'ENOENT' ? `ovsdb-server not found: ${INSTALL_HINT}` : `cannot start ovsdb-server: ${err.message}`, err);
    }
    live.add(proc);
    installExitHook();
    // Dies with us even on SIGKILL: `read` returns at EOF on the pipe when our end closes; the temp dir goes too.
    const dog = spawn('sh', ['-c', 'read _ ; kill -9 "$1" 2>/dev/null; rm -rf "$2"', 'ovsdb-sandbox-watchdog', String(proc.pid), dir], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    dog.on('error', () => {
      // Best effort: the exit hook and stop() still kill the server.
    });
    dog.unref();
    (dog.stdin as Socket | null)?.unref();
    watchdog = dog;

    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw sandboxError(`ovsdb-server exited during start-up: ${stderrTail.trim() || `see ${logPath}`}`);
      if (existsSync(socketPath) && (await canConnect(socketPath))) return;
      if (Date.now() > deadline) throw sandboxError(`ovsdb-server did not answer on ${socketPath} within ${startTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    // SIGKILL also ends a stopped process; other signals wait for SIGCONT (sent after, so a paused server
    // cannot run a single instruction before a SIGKILL).
    if (signal !== 'SIGKILL') proc.kill('SIGCONT');
    await exited;
    watchdog?.kill('SIGKILL');
    watchdog = undefined;
  };

  const vsctl = async (...args: string[]): Promise<string> => {
    const { stdout } = await run('ovs-vsctl', ['--no-wait', `--db=${remote}`, '--timeout=20', ...args], env);
    return stdout.replace(/\n$/, '');
  };

  try {
    await run('ovsdb-tool', ['create', dbPath, schema], env);
    if (options.tcp === true) tcpRemote = `tcp:127.0.0.1:${await freePort()}`;
    await launch();
    if (options.noInit !== true) await vsctl('init');
  } catch (err) {
    await terminate('SIGKILL').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    dir,
    dbPath,
    socketPath,
    remote,
    get tcpRemote() {
      return tcpRemote;
    },
    ctlPath,
    logPath,
    get pid() {
      return child?.pid ?? -1;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    vsctl,
    async appctl(...args: string[]): Promise<string> {
      const { stdout } = await run('ovs-appctl', ['-t', ctlPath, ...args], env);
      return stdout.replace(/\n$/, '');
    },
    async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') {
        await terminate(signal);
        return;
      }
      child?.kill(signal);
    },
    pause(): void {
      child?.kill('SIGSTOP');
    },
    resume(): void {
      child?.kill('SIGCONT');
    },
    async restart(): Promise<void> {
      if (stopped) throw sandboxError('restart() after stop()');
      await terminate('SIGKILL');
      await launch();
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await terminate('SIGKILL');
      watchdog?.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
