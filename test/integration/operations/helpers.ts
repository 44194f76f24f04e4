/**
 * Shared pieces of the operational tests (issue 6): probing the daemon's HTTP endpoints the way a
 * monitoring system would, running the CLI for its exit codes, and binding the datagram socket that
 * systemd's manager would own.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI, waitFor } from '../../helpers/host-env.js';
import { parseExposition, sampleValue, type Exposition } from '../../unit/health/exposition.js';

const execFileAsync = promisify(execFile);

/** Environment for a daemon that notices and retries quickly (the floor of each option's range). */
export const FAST_ENV: Readonly<Record<string, string>> = {
  OVS_XAPI_SYNC_RETRY_MAX_DELAY_MS: '250',
  OVS_XAPI_SYNC_OVSDB_PROBE_INTERVAL_MS: '500',
  OVS_XAPI_SYNC_XAPI_CALL_TIMEOUT_MS: '2000',
};

export interface CheckBody {
  readonly ok: boolean;
  readonly detail?: string;
}
export interface ProbeBody {
  readonly status: string;
  readonly checks?: Readonly<Record<string, CheckBody>>;
}

export async function probe(base: string, path: string): Promise<{ status: number; body: ProbeBody }> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as ProbeBody };
}

/**
 * Polls /readyz until it answers `status`, checking on every poll that /healthz is 200 (liveness must
 * not follow a peer). Resolves with the matching /readyz body.
 */
export async function waitReadyz(base: string, status: 200 | 503, what: string, timeoutMs = 15_000): Promise<ProbeBody> {
  return waitFor(
    async () => {
      const live = await probe(base, '/healthz');
      if (live.status !== 200) throw new Error(`/healthz answered ${live.status} ${JSON.stringify(live.body)} while waiting for ${what}`);
      const ready = await probe(base, '/readyz');
      return ready.status === status ? ready.body : undefined;
    },
    timeoutMs,
    what,
  );
}

export async function scrape(base: string): Promise<{ text: string; exposition: Exposition; contentType: string | null }> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return { text, exposition: parseExposition(text), contentType: res.headers.get('content-type') };
}

export function value(exposition: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): number {
  return sampleValue(exposition, name, labels) ?? 0;
}

/** One sample of the daemon's /metrics, 0 when absent. */
export async function metricValue(base: string, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  return value((await scrape(base)).exposition, name, labels);
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node dist/cli.js ARGS` to completion (for options that make it exit). */
export async function runCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

interface DgramServer {
  on(event: 'error', fn: (err: Error) => void): void;
  bind(path: string): void;
  close(): void;
}
const requireCjs = createRequire(import.meta.url);

export interface NotifyReceiver {
  readonly path: string;
  /** Datagrams in arrival order, each with the time it arrived. */
  readonly messages: { readonly text: string; readonly at: number }[];
  close(): void;
}

/** Binds a unix datagram socket at `DIR/notify`, as systemd's manager does for `NOTIFY_SOCKET`. */
export function bindNotifyReceiver(dir: string, onMessage?: (text: string) => void): NotifyReceiver {
  const unixDgram = requireCjs('unix-dgram') as { createSocket(type: 'unix_dgram', cb: (buf: Buffer) => void): DgramServer };
  const path = join(dir, 'notify');
  const messages: { text: string; at: number }[] = [];
  const socket = unixDgram.createSocket('unix_dgram', (buf) => {
    const text = buf.toString('utf8');
    messages.push({ text, at: Date.now() });
    onMessage?.(text);
  });
  let error: Error | undefined;
  socket.on('error', (err) => (error = err));
  socket.bind(path);
  if (error) throw error;
  return {
    path,
    messages,
    close: () => {
      socket.close();
    },
  };
}
