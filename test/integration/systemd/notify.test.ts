import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SystemdNotifier } from '../../../src/systemd/notify.js';

/**
 * The notify protocol observed on a real unix datagram socket that the test binds, the way systemd's
 * manager receives it (docs/platform.md §2), through the same unix-dgram addon.
 */

interface Receiver {
  readonly path: string;
  readonly messages: string[];
  close(): void;
}
interface DgramServer {
  on(event: 'error', fn: (err: Error) => void): void;
  bind(path: string): void;
  close(): void;
}
const requireCjs = createRequire(import.meta.url);
const unixDgram = requireCjs('unix-dgram') as {
  createSocket(type: 'unix_dgram', onMessage: (buf: Buffer) => void): DgramServer;
};

function bindReceiver(dir: string): Receiver {
  const path = join(dir, 'notify');
  const messages: string[] = [];
  const socket = unixDgram.createSocket('unix_dgram', (buf) => messages.push(buf.toString('utf8')));
  let error: Error | undefined;
  socket.on('error', (err) => (error = err));
  socket.bind(path);
  if (error) throw error;
  return { path, messages, close: () => { socket.close(); } };
}

async function until(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let dir: string;
let receiver: Receiver;
let notifier: SystemdNotifier | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'oxs-notify-'));
  receiver = bindReceiver(dir);
});
afterEach(() => {
  notifier?.close();
  notifier = undefined;
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SystemdNotifier over a real unix datagram socket', () => {
  it('delivers READY=1, STATUS=… and STOPPING=1 as separate datagrams', async () => {
    notifier = new SystemdNotifier({ logger: pino({ level: 'silent' }), env: { NOTIFY_SOCKET: receiver.path } });
    expect(notifier.enabled).toBe(true);
    notifier.ready('health endpoint on 127.0.0.1:9180');
    notifier.status('ovsdb: monitoring; xapi: connecting');
    notifier.stopping();
    await until(() => receiver.messages.length >= 3, 'three datagrams');
    expect(receiver.messages).toEqual([
      'READY=1\nSTATUS=health endpoint on 127.0.0.1:9180',
      'STATUS=ovsdb: monitoring; xapi: connecting',
      'STOPPING=1',
    ]);
  });

  it('pings WATCHDOG=1 only while the sync loop is progressing', async () => {
    let progressing = true;
    notifier = new SystemdNotifier({
      logger: pino({ level: 'silent' }),
      env: { NOTIFY_SOCKET: receiver.path, WATCHDOG_USEC: '40000', WATCHDOG_PID: String(process.pid) },
    });
    const handle = notifier.startWatchdog(() => progressing);
    expect(handle?.intervalMs).toBe(20);
    await until(() => receiver.messages.filter((m) => m === 'WATCHDOG=1').length >= 3, 'three pings');

    progressing = false;
    // Let any tick already past its progress check land, then expect silence for several periods.
    await new Promise((r) => setTimeout(r, 30));
    const heldAt = receiver.messages.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(receiver.messages.length).toBe(heldAt);

    progressing = true;
    await until(() => receiver.messages.length >= heldAt + 2, 'pings to resume');
    expect(receiver.messages.every((m) => m === 'WATCHDOG=1')).toBe(true);

    handle?.stop();
    const stoppedAt = receiver.messages.length;
    await new Promise((r) => setTimeout(r, 80));
    expect(receiver.messages.length).toBe(stoppedAt);
  });

  it('does not ping when WATCHDOG_PID names another process', async () => {
    notifier = new SystemdNotifier({
      logger: pino({ level: 'silent' }),
      env: { NOTIFY_SOCKET: receiver.path, WATCHDOG_USEC: '40000', WATCHDOG_PID: String(process.pid + 1) },
    });
    expect(notifier.startWatchdog(() => true)).toBeUndefined();
    notifier.status('probe');
    await until(() => receiver.messages.length >= 1, 'the status datagram');
    await new Promise((r) => setTimeout(r, 60));
    expect(receiver.messages).toEqual(['STATUS=probe']);
  });

  it('sends nothing without NOTIFY_SOCKET even though a socket is listening', async () => {
    notifier = new SystemdNotifier({ logger: pino({ level: 'silent' }), env: { WATCHDOG_USEC: '40000' } });
    notifier.ready();
    notifier.status('x');
    notifier.watchdog();
    notifier.stopping();
    expect(notifier.startWatchdog(() => true)).toBeUndefined();
    // Positive control: a notifier pointed at the socket is heard, so silence above is meaningful.
    const control = new SystemdNotifier({ logger: pino({ level: 'silent' }), env: { NOTIFY_SOCKET: receiver.path } });
    control.status('control');
    await until(() => receiver.messages.length >= 1, 'the control datagram');
    control.close();
    expect(receiver.messages).toEqual(['STATUS=control']);
  });

  it('does not throw when the notify socket is gone', () => {
    notifier = new SystemdNotifier({ logger: pino({ level: 'silent' }), env: { NOTIFY_SOCKET: join(dir, 'missing') } });
    expect(() => {
      notifier!.ready();
      notifier!.watchdog();
    }).not.toThrow();
  });
});
