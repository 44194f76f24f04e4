import { describe, expect, it } from 'vitest';
import { delay } from '../../../src/time/clock.js';
import { ManualClock } from '../../helpers/manual-clock.js';

describe('ManualClock', () => {
  it('fires timers in due order only when advanced', async () => {
    const clock = new ManualClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b'), 20);
    clock.setTimeout(() => fired.push('a'), 10);
    const cancelled = clock.setTimeout(() => fired.push('never'), 15);
    clock.clearTimeout(cancelled);
    await clock.advance(9);
    expect(fired).toEqual([]);
    await clock.advance(11);
    expect(fired).toEqual(['a', 'b']);
    expect(clock.now()).toBe(1020);
  });

  it('runs timers that timers schedule within the same advance', async () => {
    const clock = new ManualClock();
    const at: number[] = [];
    clock.setTimeout(() => {
      at.push(clock.now());
      clock.setTimeout(() => at.push(clock.now()), 5);
    }, 5);
    await clock.advance(10);
    expect(at).toEqual([5, 10]);
  });

  it('drives delay(), and an abort rejects it', async () => {
    const clock = new ManualClock();
    let done = false;
    const p = delay(clock, 50).then(() => (done = true));
    await clock.advance(49);
    expect(done).toBe(false);
    await clock.advance(1);
    await p;
    expect(done).toBe(true);
    const ac = new AbortController();
    const q = delay(clock, 50, ac.signal);
    ac.abort(new Error('stop'));
    await expect(q).rejects.toThrow('stop');
    expect(clock.pending).toBe(0);
  });
});
