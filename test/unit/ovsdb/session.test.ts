import { pino } from 'pino';
import { describe, expect, test } from 'vitest';
import { OvsdbError } from '../../../src/ovsdb/errors.js';
import { OvsdbSession, type SessionConnection, type SessionPhase } from '../../../src/ovsdb/session.js';
import { capturingLogger } from '../../integration/ovsdb/helpers.js';
import { ManualClock } from '../../helpers/manual-clock.js';

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Delays of the pending timers, from now. */
function pendingDelays(clock: ManualClock): number[] {
  const next = clock.nextDueAt();
  return next === undefined ? [] : [next - clock.now()];
}

class FakeConn implements SessionConnection {
  readonly closed: Promise<unknown>;
  drop!: (reason: unknown) => void;
  constructor() {
    this.closed = new Promise((resolve) => (this.drop = resolve));
  }
  close(): void {
    this.drop(new OvsdbError('OVSDB_CONNECTION_CLOSED', 'closed by client'));
  }
}

const refused = () => Promise.reject(new OvsdbError('OVSDB_CONNECTION_CLOSED', 'connect ECONNREFUSED'));
const POLICY = { initialMs: 100, maxMs: 800, factor: 2, jitter: 0 };

describe('OvsdbSession (ManualClock + Backoff)', () => {
  test('capped exponential backoff while the server is down; close() leaves no timer', async () => {
    const clock = new ManualClock();
    let attempts = 0;
    const phases: SessionPhase[] = [];
    const session = new OvsdbSession<FakeConn>({
      logger: pino({ level: 'silent' }),
      target: 'unix:/x',
      clock,
      backoff: POLICY,
      random: () => 0.5,
      connect: () => {
        attempts++;
        return refused();
      },
      setup: async () => undefined,
      onPhase: (p) => phases.push(p),
    });
    session.start();
    await flush();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      expect(session.phase).toBe('backoff');
      delays.push(pendingDelays(clock)[0]!);
      await clock.advance(pendingDelays(clock)[0]!);
    }
    expect(delays).toEqual([100, 200, 400, 800, 800, 800]);
    expect(attempts).toBe(7);
    await session.close();
    expect(session.phase).toBe('closed');
    expect(clock.pending).toBe(0);
    expect(phases.slice(0, 3)).toEqual(['connecting', 'backoff', 'connecting']);
  });

  test('jitter comes from the injected random source', async () => {
    const clock = new ManualClock();
    const session = new OvsdbSession<FakeConn>({
      logger: pino({ level: 'silent' }),
      target: 't',
      clock,
      backoff: { initialMs: 1000, maxMs: 8000, factor: 2, jitter: 1 },
      random: () => 0,
      connect: refused,
      setup: async () => undefined,
    });
    session.start();
    await flush();
    expect(pendingDelays(clock)).toEqual([500]);
    await session.close();
  });

  test('backoff resets once monitoring is reached; reconnects counted; one log line per state change', async () => {
    const clock = new ManualClock();
    const { logger, lines } = capturingLogger('info');
    const conns: FakeConn[] = [];
    let fail = 2;
    const session = new OvsdbSession<FakeConn>({
      logger,
      target: 't',
      clock,
      backoff: POLICY,
      random: () => 0.5,
      connect: () => {
        if (fail > 0) {
          fail--;
          return refused();
        }
        const c = new FakeConn();
        conns.push(c);
        return Promise.resolve(c);
      },
      setup: async () => undefined,
    });
    session.start();
    await flush();
    await clock.advance(100);
    await clock.advance(200);
    expect(session.phase).toBe('monitoring');
    expect(session.reconnects).toBe(0);
    // Two failed attempts logged as one warning, not two.
    expect(lines.filter((l) => l.phase === 'backoff')).toHaveLength(1);

    conns[0]!.drop(new OvsdbError('OVSDB_TIMEOUT', 'no reply to the echo probe'));
    await flush();
    expect(session.phase).toBe('backoff');
    expect(pendingDelays(clock)).toEqual([100]); // reset to the first step
    await clock.advance(100);
    expect(session.phase).toBe('monitoring');
    expect(session.reconnects).toBe(1);
    expect(lines.map((l) => l.phase)).toEqual(['connecting', 'backoff', 'connected', 'monitoring', 'backoff', 'connecting', 'connected', 'monitoring']);
    await session.close();
    await expect(conns[1]!.closed).resolves.toBeDefined();
    expect(clock.pending).toBe(0);
  });

  test('a failing setup closes that connection and backs off', async () => {
    const clock = new ManualClock();
    const conn = new FakeConn();
    let closed = false;
    void conn.closed.then(() => (closed = true));
    const session = new OvsdbSession<FakeConn>({
      logger: pino({ level: 'silent' }),
      target: 't',
      clock,
      backoff: POLICY,
      random: () => 0.5,
      connect: () => Promise.resolve(conn),
      setup: () => Promise.reject(new OvsdbError('OVSDB_PROTOCOL', 'bad reply')),
    });
    session.start();
    await flush();
    expect(session.phase).toBe('backoff');
    expect(closed).toBe(true);
    await session.close();
  });

  test('close() during a connect attempt resolves and stops', async () => {
    const clock = new ManualClock();
    const session = new OvsdbSession<FakeConn>({
      logger: pino({ level: 'silent' }),
      target: 't',
      clock,
      connect: (signal) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            reject(new OvsdbError('OVSDB_CONNECTION_CLOSED', 'aborted'));
          });
        }),
      setup: async () => undefined,
    });
    session.start();
    await flush();
    expect(session.phase).toBe('connecting');
    await session.close();
    expect(session.phase).toBe('closed');
    expect(clock.pending).toBe(0);
  });
});
