/**
 * The one backoff of every retry loop (OVSDB session, XAPI session, XAPI watcher, reconcile scheduler).
 *
 * Modelled on Open vSwitch's `python/ovs/reconnect.py`: the object holds the state, every method takes
 * `now` (milliseconds on the caller's `Clock`), and nothing reads a clock of its own, so its behaviour is a
 * pure function of the calls made, testable in scripted time as OVS tests `reconnect.py` in
 * `tests/reconnect.at`. Like reconnect.py, a success that has lasted at least the current backoff interval
 * before the next failure resets the backoff (`failure` after a long-lived success starts again from
 * `initialMs`), while a peer that fails right after each success keeps backing off.
 *
 * Delays are capped exponential with jitter: attempt n waits `min(maxMs, initialMs · factorⁿ⁻¹)`, of which
 * the last `jitter/2` part is drawn at random so that a fleet of hosts restarted together does not retry in
 * lockstep.
 */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  /** 0 = no jitter; 1 = delay drawn uniformly from [d/2, d]. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 8000, factor: 2, jitter: 0.5 };

/** The delay before attempt `failures + 1` after `failures` consecutive failures (1-based). */
export function backoffDelay(failures: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, failures - 1));
  const spread = exp * Math.min(1, Math.max(0, policy.jitter)) * 0.5;
  return Math.round(exp - spread + random() * spread);
}

export class Backoff {
  readonly policy: BackoffPolicy;
  private readonly random: () => number;
  private failureCount = 0;
  private retryAt: number | undefined;
  private lastDelayMs = 0;
  private succeededAt: number | undefined;

  constructor(policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random) {
    this.policy = policy;
    this.random = random;
  }

  /** Consecutive failures since the last success that reset the backoff. */
  get failures(): number {
    return this.failureCount;
  }

  /** An attempt failed at `now`. Returns the delay until the next attempt, also kept as `retryAt`. */
  failure(now: number): number {
    if (this.succeededAt !== undefined && now - this.succeededAt >= Math.max(this.lastDelayMs, this.policy.initialMs)) {
      this.failureCount = 0;
    }
    this.succeededAt = undefined;
    this.failureCount += 1;
    this.lastDelayMs = backoffDelay(this.failureCount, this.policy, this.random);
    this.retryAt = now + this.lastDelayMs;
    return this.lastDelayMs;
  }

  /**
   * An attempt succeeded at `now`. The failure count is kept until the success has lasted the current
   * interval (see the class comment), unless `reset` says the success is final (a completed pass, say).
   */
  success(now: number, reset = false): void {
    this.retryAt = undefined;
    if (reset) {
      this.failureCount = 0;
      this.succeededAt = undefined;
      return;
    }
    this.succeededAt = now;
  }

  /** Forget all history: the next failure waits `initialMs` again. */
  reset(): void {
    this.failureCount = 0;
    this.retryAt = undefined;
    this.succeededAt = undefined;
    this.lastDelayMs = 0;
  }

  /** When the next attempt is due, or undefined when none is scheduled. */
  get nextAttemptAt(): number | undefined {
    return this.retryAt;
  }

  /** Milliseconds from `now` until the next attempt (0 when due or none is scheduled). */
  timeUntilNext(now: number): number {
    return this.retryAt === undefined ? 0 : Math.max(0, this.retryAt - now);
  }
}
