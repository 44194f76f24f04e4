import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { SystemdNotifier, type UnixDgramModule, type UnixDgramSocket } from '../../../src/systemd/notify.js';

/** A logger whose records are kept for assertions. */
function recordingLogger(): { logger: pino.Logger; records: { level: number; msg: string }[] } {
  const records: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), records };
}

/** An in-memory stand-in for the addon (the real one is exercised in test/integration/systemd). */
function fakeAddon(sent: { path: string; text: string }[], fail?: Error): UnixDgramModule {
  return {
    createSocket(): UnixDgramSocket {
      return {
        on: () => undefined,
        send(buf, offset, length, path, cb) {
          sent.push({ path, text: buf.subarray(offset, offset + length).toString('utf8') });
          cb(fail);
        },
        close: () => undefined,
      };
    },
  };
}

const neverLoad = (): UnixDgramModule => {
  throw new Error('addon must not be loaded');
};

describe('SystemdNotifier without a usable NOTIFY_SOCKET', () => {
  it('is a no-op and never loads the addon when NOTIFY_SOCKET is unset', () => {
    const { logger, records } = recordingLogger();
    let loads = 0;
    const n = new SystemdNotifier({
      logger,
      env: { WATCHDOG_USEC: '1000000' },
      loadAddon: () => {
        loads++;
        return neverLoad();
      },
    });
    n.ready();
    n.status('x');
    n.watchdog();
    n.stopping();
    expect(n.enabled).toBe(false);
    expect(n.startWatchdog(() => true)).toBeUndefined();
    expect(loads).toBe(0);
    expect(records.filter((r) => r.msg.includes('NOTIFY_SOCKET not set'))).toHaveLength(1);
    expect(records.every((r) => r.level === 20)).toBe(true);
  });

  it('warns once and no-ops for an abstract socket', () => {
    const { logger, records } = recordingLogger();
    const sent: { path: string; text: string }[] = [];
    const n = new SystemdNotifier({ logger, env: { NOTIFY_SOCKET: '@/org/systemd/notify' }, loadAddon: () => fakeAddon(sent) });
    n.ready();
    n.watchdog();
    expect(sent).toEqual([]);
    expect(n.enabled).toBe(false);
    const warns = records.filter((r) => r.level === 40);
    expect(warns).toHaveLength(1);
    expect(warns[0]!.msg).toMatch(/abstract/);
  });

  it('no-ops, logging once at debug, when the addon fails to load', () => {
    const { logger, records } = recordingLogger();
    const n = new SystemdNotifier({
      logger,
      env: { NOTIFY_SOCKET: '/run/systemd/notify' },
      loadAddon: () => {
        throw new Error('Cannot find module unix-dgram');
      },
    });
    expect(() => {
      n.ready();
      n.status('s');
      n.stopping();
    }).not.toThrow();
    expect(n.enabled).toBe(false);
    const addonLogs = records.filter((r) => r.msg.includes('addon unavailable'));
    expect(addonLogs).toHaveLength(1);
    expect(addonLogs[0]!.level).toBe(20);
  });
});

describe('SystemdNotifier messages', () => {
  it('formats READY/STATUS/STOPPING/WATCHDOG and keeps STATUS on one line', () => {
    const sent: { path: string; text: string }[] = [];
    const n = new SystemdNotifier({
      logger: pino({ level: 'silent' }),
      env: { NOTIFY_SOCKET: '/run/x/notify' },
      loadAddon: () => fakeAddon(sent),
    });
    n.ready();
    n.ready('listening');
    n.status('line one\nREADY=1\r\nthree');
    n.watchdog();
    n.stopping();
    n.stopping('bye');
    expect(sent.map((s) => s.path)).toEqual(Array(6).fill('/run/x/notify'));
    expect(sent.map((s) => s.text)).toEqual([
      'READY=1',
      'READY=1\nSTATUS=listening',
      'STATUS=line one READY=1 three',
      'WATCHDOG=1',
      'STOPPING=1',
      'STOPPING=1\nSTATUS=bye',
    ]);
  });

  it('survives delivery failures and warns only once', () => {
    const { logger, records } = recordingLogger();
    const sent: { path: string; text: string }[] = [];
    const n = new SystemdNotifier({
      logger,
      env: { NOTIFY_SOCKET: '/run/x/notify' },
      loadAddon: () => fakeAddon(sent, new Error('send -111')),
    });
    n.status('a');
    n.status('b');
    n.watchdog();
    expect(sent).toHaveLength(3);
    expect(records.filter((r) => r.level === 40 && r.msg.includes('not delivered'))).toHaveLength(1);
  });
});

describe('watchdogIntervalMs (sd_watchdog_enabled semantics)', () => {
  const cases: { env: Record<string, string>; expected: number | undefined }[] = [
    { env: {}, expected: undefined },
    { env: { WATCHDOG_USEC: '30000000' }, expected: 15_000 },
    { env: { WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }, expected: 15_000 },
    { env: { WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4243' }, expected: undefined },
    { env: { WATCHDOG_USEC: '30000000', WATCHDOG_PID: '' }, expected: 15_000 },
    { env: { WATCHDOG_USEC: '0' }, expected: undefined },
    { env: { WATCHDOG_USEC: '-5' }, expected: undefined },
    { env: { WATCHDOG_USEC: '1e6' }, expected: undefined },
    { env: { WATCHDOG_USEC: 'abc' }, expected: undefined },
    { env: { WATCHDOG_USEC: '1000' }, expected: 1 },
  ];
  it.each(cases)('$env → $expected', ({ env, expected }) => {
    const n = new SystemdNotifier({ logger: pino({ level: 'silent' }), env, pid: 4242, loadAddon: neverLoad });
    expect(n.watchdogIntervalMs()).toBe(expected);
  });
});
