/**
 * The sd_notify protocol of the REAL daemon (issue 6 §4), observed on a unix datagram socket this test
 * binds in place of systemd's manager: READY=1 once the health endpoint listens, STATUS= lines,
 * WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1 on SIGTERM, then exit 0.
 */
import { connect, createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';
import { bindNotifyReceiver, FAST_ENV, probe, type NotifyReceiver } from './helpers.js';

const WATCHDOG_USEC = 400_000;

/** Resolves true when something accepts a TCP connection on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

/** A loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => { resolve(); }));
  return port;
}

describe('systemd notify protocol with the real daemon', () => {
  let env: HostEnv;
  let dir: string;
  let receiver: NotifyReceiver;
  let daemon: Daemon;
  let port: number;
  /** Whether the health port accepted a connection attempted as soon as READY=1 arrived. */
  let listeningAtReady: Promise<boolean> | undefined;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 1, vifsPerVm: 1 });
    dir = mkdtempSync(join(tmpdir(), 'oxs-ops-notify-'));
    // A fixed port, so the test can knock on it the moment READY=1 arrives (before reading any log).
    port = await freePort();
    receiver = bindNotifyReceiver(dir, (text) => {
      if (text.startsWith('READY=1') && listeningAtReady === undefined) listeningAtReady = accepts(port);
    });
    daemon = env.startDaemon({
      args: ['--health', `127.0.0.1:${port}`],
      env: { ...FAST_ENV, NOTIFY_SOCKET: receiver.path, WATCHDOG_USEC: String(WATCHDOG_USEC), WATCHDOG_PID: '' },
    });
  });

  afterAll(async () => {
    receiver.close();
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends READY=1 with a STATUS line once the health endpoint accepts connections', async () => {
    const ready = await waitFor(() => receiver.messages.find((m) => m.text.startsWith('READY=1')), 10_000, 'READY=1');
    expect(ready.text).toMatch(/^READY=1\nSTATUS=\S.*$/);
    expect(await listeningAtReady).toBe(true);
    expect((await probe(`http://127.0.0.1:${port}`, '/healthz')).status).toBe(200);
    // Nothing but READY (and pings) before it: READY is the first datagram with a status.
    const first = receiver.messages.findIndex((m) => m.text.startsWith('READY=1'));
    expect(receiver.messages.slice(0, first).every((m) => m.text === 'WATCHDOG=1')).toBe(true);
  });

  it('reports its state in one-line STATUS= datagrams, reaching "converged"', async () => {
    await waitFor(() => receiver.messages.some((m) => /^STATUS=converged; /.test(m.text)), 10_000, 'STATUS=converged');
    for (const m of receiver.messages) {
      for (const line of m.text.split('\n')) expect(line).toMatch(/^(READY|STATUS|WATCHDOG|STOPPING)=/);
    }
  });

  it('pings WATCHDOG=1 about every WATCHDOG_USEC/2', async () => {
    const start = Date.now();
    const from = receiver.messages.length;
    await waitFor(() => receiver.messages.slice(from).filter((m) => m.text === 'WATCHDOG=1').length >= 4, 5000, 'four pings');
    const pings = receiver.messages.slice(from).filter((m) => m.text === 'WATCHDOG=1');
    const elapsed = Date.now() - start;
    // Four pings at 200 ms take ~600-800 ms; far fewer than one per WATCHDOG_USEC would be a failure.
    expect(elapsed).toBeLessThan(2 * WATCHDOG_USEC / 1000 + 1000);
    const gaps = pings.slice(1).map((m, i) => m.at - pings[i]!.at);
    for (const gap of gaps) expect(gap).toBeLessThan(WATCHDOG_USEC / 1000);
  });

  it('sends STOPPING=1 on SIGTERM and exits 0', async () => {
    const from = receiver.messages.length;
    const status = await daemon.stop('SIGTERM');
    expect(status.code).toBe(0);
    await waitFor(() => receiver.messages.slice(from).some((m) => m.text.startsWith('STOPPING=1')), 2000, 'STOPPING=1');
    const stopping = receiver.messages.slice(from).findIndex((m) => m.text.startsWith('STOPPING=1'));
    // No keep-alive after shutdown began.
    expect(receiver.messages.slice(from + stopping + 1).filter((m) => m.text === 'WATCHDOG=1')).toEqual([]);
  });
});
