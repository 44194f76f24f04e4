import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay, type BackoffPolicy } from '../../../src/time/backoff.js';

const noJitter: BackoffPolicy = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 };

describe('backoffDelay', () => {
  it.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1000],
    [50, 1000],
  ])('failure %i waits %i ms without jitter', (failures, expected) => {
    expect(backoffDelay(failures, noJitter)).toBe(expected);
  });

  it('jitter draws from the upper half of the interval', () => {
    const policy = { ...noJitter, jitter: 1 };
    expect(backoffDelay(3, policy, () => 0)).toBe(200);
    expect(backoffDelay(3, policy, () => 1)).toBe(400);
  });
});

describe('Backoff (scripted time, as OVS tests reconnect.py)', () => {
  it('doubles per consecutive failure and says when the next attempt is due', () => {
    const b = new Backoff(noJitter);
    expect(b.failure(0)).toBe(100);
    expect(b.nextAttemptAt).toBe(100);
    expect(b.failure(100)).toBe(200);
    expect(b.timeUntilNext(150)).toBe(150);
    expect(b.failure(300)).toBe(400);
    expect(b.failures).toBe(3);
  });

  it('a success followed at once by a failure keeps backing off', () => {
    const b = new Backoff(noJitter);
    b.failure(0);
    b.failure(100);
    b.success(300);
    expect(b.nextAttemptAt).toBeUndefined();
    expect(b.failure(310)).toBe(400);
  });

  it('a success that lasted the current interval resets the backoff', () => {
    const b = new Backoff(noJitter);
    b.failure(0);
    b.failure(100);
    b.success(300);
    expect(b.failure(300 + 200)).toBe(100);
    expect(b.failures).toBe(1);
  });

  it('a final success resets at once', () => {
    const b = new Backoff(noJitter);
    b.failure(0);
    b.failure(100);
    b.success(300, true);
    expect(b.failure(301)).toBe(100);
  });

  it('reset forgets everything', () => {
    const b = new Backoff(noJitter);
    b.failure(0);
    b.reset();
    expect(b.failures).toBe(0);
    expect(b.timeUntilNext(5)).toBe(0);
    expect(b.failure(5)).toBe(100);
  });
});
