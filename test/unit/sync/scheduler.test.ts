import { beforeEach, describe, expect, it } from 'vitest';
import { ReconcileScheduler, type PassOutcome, type ReconcileSchedulerOptions } from '../../../src/sync/scheduler.js';
import { delay } from '../../../src/time/clock.js';
import { ManualClock } from '../../helpers/manual-clock.js';

/** A pass whose completion the test controls. */
function controlledPass() {
  const calls: { resolve: (o: PassOutcome) => void; reject: (e: unknown) => void }[] = [];
  const pass = () =>
    new Promise<PassOutcome>((resolve, reject) => {
      calls.push({ resolve, reject });
    });
  return { pass, calls };
}

const noJitter = { initialMs: 100, maxMs: 800, factor: 2, jitter: 0 };

describe('ReconcileScheduler (manual clock)', () => {
  let clock: ManualClock;
  /** A scheduler on the test's manual clock. */
  const scheduler = (options: Omit<ReconcileSchedulerOptions, 'clock'>): ReconcileScheduler => new ReconcileScheduler({ ...options, clock });
  beforeEach(() => {
    clock = new ManualClock();
  });

  it('coalesces triggers that arrive before the pass starts into one pass', async () => {
    const { pass, calls } = controlledPass();
    const loop = scheduler({ pass });
    loop.trigger();
    loop.trigger();
    loop.trigger();
    await clock.advance(0);
    expect(calls).toHaveLength(1);
    calls[0]!.resolve({ outcome: 'done' });
    await clock.advance(10);
    expect(calls).toHaveLength(1);
    await loop.whenIdle();
  });

  it('runs exactly one more pass for any number of triggers during a pass', async () => {
    const { pass, calls } = controlledPass();
    const loop = scheduler({ pass });
    loop.trigger();
    await clock.advance(0);
    expect(calls).toHaveLength(1);
    for (let i = 0; i < 5; i++) loop.trigger();
    expect(loop.status().running).toBe(true);
    calls[0]!.resolve({ outcome: 'done' });
    await clock.advance(0);
    expect(calls).toHaveLength(2);
    calls[1]!.resolve({ outcome: 'done' });
    await clock.advance(100);
    expect(calls).toHaveLength(2);
  });

  it('never runs two passes at once', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const loop = scheduler({
      pass: async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await delay(clock, 5);
        inFlight--;
        return { outcome: 'done' };
      },
    });
    for (let i = 0; i < 20; i++) {
      loop.trigger();
      loop.kick();
      await clock.advance(2);
    }
    await clock.advance(50);
    expect(maxInFlight).toBe(1);
  });

  it('requeues a failed pass with capped exponential backoff and resets on success', async () => {
    const { pass, calls } = controlledPass();
    const loop = scheduler({ pass, backoff: noJitter });
    loop.trigger();
    await clock.advance(0);
    const delays: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      calls[attempt]!.resolve({ outcome: 'retry', error: new Error('peer away') });
      await clock.advance(0);
      delays.push(loop.status().retryInMs!);
      await clock.advance(loop.status().retryInMs!);
      expect(calls).toHaveLength(attempt + 2);
    }
    expect(delays).toEqual([100, 200, 400, 800, 800]);
    expect(loop.status().failures).toBe(5);
    calls[5]!.resolve({ outcome: 'done' });
    await clock.advance(0);
    expect(loop.status().failures).toBe(0);
    expect(loop.status().lastError).toBeUndefined();
  });

  it('treats a thrown pass as a retry and keeps the error for status', async () => {
    let n = 0;
    const loop = scheduler({
      pass: async () => {
        n++;
        if (n === 1) throw new Error('boom');
        return { outcome: 'done' };
      },
      backoff: noJitter,
    });
    loop.trigger();
    await clock.advance(0);
    expect(loop.status().lastError).toBeInstanceOf(Error);
    await clock.advance(100);
    expect(n).toBe(2);
    expect(loop.status().failures).toBe(0);
  });

  it('lets triggers wait for a pending backoff, but kick() retries at once', async () => {
    const { pass, calls } = controlledPass();
    const loop = scheduler({ pass, backoff: noJitter });
    loop.trigger();
    await clock.advance(0);
    calls[0]!.resolve({ outcome: 'retry' });
    await clock.advance(0);
    loop.trigger();
    await clock.advance(50);
    expect(calls).toHaveLength(1);
    loop.kick();
    await clock.advance(0);
    expect(calls).toHaveLength(2);
  });

  it('stop() waits for the pass in flight and schedules nothing afterwards', async () => {
    const { pass, calls } = controlledPass();
    const loop = scheduler({ pass });
    loop.trigger();
    await clock.advance(0);
    loop.trigger();
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await clock.advance(0);
    expect(stopped).toBe(false);
    calls[0]!.resolve({ outcome: 'done' });
    await stopping;
    loop.trigger();
    await clock.advance(1000);
    expect(calls).toHaveLength(1);
    expect(clock.pending).toBe(0);
  });

  it('caps the delay at the configured maximum (the daemon passes retryMaxDelayMs)', async () => {
    const { pass, calls } = controlledPass();
    const loop = scheduler({ pass, backoff: { ...noJitter, maxMs: 300 } });
    loop.trigger();
    await clock.advance(0);
    const delays: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      calls[attempt]!.resolve({ outcome: 'retry' });
      await clock.advance(0);
      delays.push(clock.nextDueAt()! - clock.now());
      await clock.advance(delays[attempt]!);
    }
    expect(delays).toEqual([100, 200, 300, 300]);
  });
});
