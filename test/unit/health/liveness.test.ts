import { describe, expect, it } from 'vitest';
import { runCheck, runChecks, type Check } from '../../../src/health/checks.js';
import { EventLoopLagProbe, HEARTBEAT_INTERVAL_MS, ProgressTracker } from '../../../src/health/liveness.js';
import type { Clock } from '../../../src/time/clock.js';
import { ManualClock } from '../../helpers/manual-clock.js';

/** A clock whose time the test sets; its timers never fire (the tests call `tick()` themselves). */
function clock(start = 1000): Clock & { advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms), setTimeout: () => undefined, clearTimeout: () => undefined };
}

describe('EventLoopLagProbe (driven clock)', () => {
  it('is ok while ticks are on time', () => {
    const c = clock();
    const probe = new EventLoopLagProbe({ intervalMs: 100, thresholdMs: 500, windowMs: 2000, clock: c });
    for (let i = 0; i < 10; i++) {
      c.advance(110);
      probe.tick();
    }
    expect(probe.check()).toEqual({ ok: true, detail: 'max event loop lag 10 ms' });
  });

  it('fails for windowMs after a late tick, then recovers', () => {
    const c = clock();
    const probe = new EventLoopLagProbe({ intervalMs: 100, thresholdMs: 500, windowMs: 2000, clock: c });
    c.advance(100 + 800);
    probe.tick();
    const failed = probe.check();
    expect(failed.ok).toBe(false);
    expect(failed.detail).toMatch(/blocked for 800 ms/);
    c.advance(1900);
    expect(probe.check().ok).toBe(false);
    c.advance(200);
    expect(probe.check().ok).toBe(true);
  });

  it('a lag at the threshold is tolerated, just above it is not', () => {
    const c = clock();
    const probe = new EventLoopLagProbe({ intervalMs: 100, thresholdMs: 500, windowMs: 2000, clock: c });
    c.advance(600);
    probe.tick();
    expect(probe.check().ok).toBe(true);
    c.advance(601);
    probe.tick();
    expect(probe.check().ok).toBe(false);
  });

  it('wakes the process once a second: a single heartbeat timer, re-armed from each tick', async () => {
    const c = new ManualClock(1000);
    const lags: number[] = [];
    const probe = new EventLoopLagProbe({ clock: c, onLag: (ms) => lags.push(ms) });
    probe.start();
    expect(HEARTBEAT_INTERVAL_MS).toBe(1000);
    expect(c.pending).toBe(1);
    expect(c.nextDueAt()).toBe(2000);
    await c.advance(999);
    expect(lags).toEqual([]);
    await c.advance(1);
    expect(lags).toEqual([0]);
    await c.advance(10_000);
    expect(lags).toHaveLength(11);
    expect(c.pending).toBe(1);
    probe.stop();
    expect(c.pending).toBe(0);
    await c.advance(5000);
    expect(lags).toHaveLength(11);
  });

  it('reports the lateness of each tick beyond the period to onLag', () => {
    const c = clock();
    const lags: number[] = [];
    const probe = new EventLoopLagProbe({ intervalMs: 100, clock: c, onLag: (ms) => lags.push(ms) });
    c.advance(100);
    probe.tick();
    c.advance(350);
    probe.tick();
    c.advance(99);
    probe.tick();
    expect(lags).toEqual([0, 250, 0]);
  });

  it('notices a real blocked loop', async () => {
    const probe = new EventLoopLagProbe({ intervalMs: 20, thresholdMs: 150, windowMs: 5000 });
    probe.start();
    try {
      await new Promise((r) => setTimeout(r, 50));
      expect(probe.check().ok).toBe(true);
      const until = Date.now() + 300;
      while (Date.now() < until) {
        // deliberately block the event loop
      }
      await new Promise((r) => setTimeout(r, 30));
      const result = probe.check();
      expect(result.ok).toBe(false);
      expect(result.detail).toMatch(/blocked/);
    } finally {
      probe.stop();
    }
  });
});

describe('ProgressTracker', () => {
  it('is progressing when idle within factor × expected interval', () => {
    const c = clock();
    const t = new ProgressTracker({ expectedIntervalMs: 1000, factor: 3, now: () => c.now() });
    c.advance(2999);
    expect(t.isProgressing()).toBe(true);
    c.advance(2);
    expect(t.isProgressing()).toBe(false);
    expect(t.check().detail).toMatch(/no reconcile pass finished for 3001 ms \(limit 3000 ms\)/);
    t.passStarted();
    expect(t.isProgressing()).toBe(true);
    t.passFinished();
    expect(t.isProgressing()).toBe(true);
  });

  it('fails when one pass runs longer than maxPassMs', () => {
    const c = clock();
    const t = new ProgressTracker({ expectedIntervalMs: 60_000, maxPassMs: 500, now: () => c.now() });
    t.passStarted();
    c.advance(500);
    expect(t.isProgressing()).toBe(true);
    c.advance(1);
    expect(t.check()).toEqual({ ok: false, detail: 'reconcile pass running for 501 ms (limit 500 ms)' });
    t.passFinished();
    expect(t.isProgressing()).toBe(true);
  });

  it('mark() restarts the idle clock', () => {
    const c = clock();
    const t = new ProgressTracker({ expectedIntervalMs: 100, factor: 1, now: () => c.now() });
    c.advance(90);
    t.mark();
    c.advance(90);
    expect(t.isProgressing()).toBe(true);
  });
});

describe('runCheck / runChecks', () => {
  it('turns a throwing or malformed check into a failure with a reason', () => {
    const throwing: Check = () => {
      throw new Error('kaput');
    };
    expect(runCheck(throwing)).toEqual({ ok: false, detail: 'check threw: kaput' });
    expect(runCheck((() => undefined) as unknown as Check)).toEqual({ ok: false, detail: 'check returned an invalid result' });
    expect(runCheck((() => ({ ok: 'yes' })) as unknown as Check).ok).toBe(false);
    expect(runCheck(() => ({ ok: true, detail: 'fine' }))).toEqual({ ok: true, detail: 'fine' });
  });
  it('lists every check in order', () => {
    const results = runChecks(
      new Map<string, Check>([
        ['b', () => ({ ok: true, detail: '1' })],
        ['a', () => ({ ok: false, detail: '2' })],
      ]),
    );
    expect(Object.keys(results)).toEqual(['b', 'a']);
  });
});
