import { performance } from 'node:perf_hooks';
import type { CheckResult } from './checks.js';

/**
 * Liveness answers "is this process wedged?" (docs/platform.md §5): the event loop must be
 * responsive and the sync loop must be making progress. Neither looks at a peer.
 */

export interface EventLoopLagProbeOptions {
  /** Tick period of the drift timer (default 500 ms). */
  readonly intervalMs?: number;
  /** A tick later than this counts as the loop having been blocked (default 2000 ms). */
  readonly thresholdMs?: number;
  /** How long a block keeps liveness failed after it ended (default 10 000 ms). */
  readonly windowMs?: number;
  /** Monotonic clock in ms (default `performance.now`). */
  readonly now?: () => number;
}

/**
 * Timer-drift probe: an unref'd interval timer notes how late each tick fires. Lateness beyond the
 * threshold means the loop was blocked that long (a huge synchronous parse, a runaway loop, swap). A
 * request served right after a block sees the overdue tick too, since `check()` also measures the
 * time since the last tick.
 */
export class EventLoopLagProbe {
  private readonly intervalMs: number;
  private readonly thresholdMs: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private lastTickAt: number;
  private lastBlockAt: number | undefined;
  private lastBlockMs = 0;
  private maxLagMs = 0;

  constructor(options: EventLoopLagProbeOptions = {}) {
    this.intervalMs = options.intervalMs ?? 500;
    this.thresholdMs = options.thresholdMs ?? 2000;
    this.windowMs = options.windowMs ?? 10_000;
    this.now = options.now ?? (() => performance.now());
    this.lastTickAt = this.now();
  }

  start(): void {
    if (this.timer) return;
    this.lastTickAt = this.now();
    this.timer = setInterval(() => {
      this.tick();
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Records one tick; exposed for tests that drive the clock. */
  tick(): void {
    const now = this.now();
    this.observeLag(now - this.lastTickAt - this.intervalMs, now);
    this.lastTickAt = now;
  }

  check(): CheckResult {
    const now = this.now();
    if (this.timer) this.observeLag(now - this.lastTickAt - this.intervalMs, now);
    if (this.lastBlockAt !== undefined && now - this.lastBlockAt <= this.windowMs) {
      const ago = Math.round(now - this.lastBlockAt);
      return {
        ok: false,
        detail: `event loop blocked for ${Math.round(this.lastBlockMs)} ms, ${ago} ms ago (threshold ${this.thresholdMs} ms)`,
      };
    }
    return { ok: true, detail: `max event loop lag ${Math.round(this.maxLagMs)} ms` };
  }

  private observeLag(lagMs: number, now: number): void {
    if (lagMs <= 0) return;
    if (lagMs > this.maxLagMs) this.maxLagMs = lagMs;
    if (lagMs > this.thresholdMs) {
      // The same ongoing block is observed repeatedly (tick and check); keep its largest extent.
      if (this.lastBlockAt === undefined || now - this.lastBlockAt > this.windowMs || lagMs > this.lastBlockMs) {
        this.lastBlockMs = lagMs;
      }
      this.lastBlockAt = now;
    }
  }
}

export interface ProgressTrackerOptions {
  /**
   * The longest gap expected between two finished passes when all is well: the periodic full resync
   * interval (docs/design.md §4.4, default 10 minutes) guarantees a pass at least that often.
   */
  readonly expectedIntervalMs: number;
  /** No pass finished within `factor × expectedIntervalMs` means the loop is stalled (default 3). */
  readonly factor?: number;
  /** A single pass running longer than this is wedged (default 120 000 ms). */
  readonly maxPassMs?: number;
  /** Monotonic clock in ms (default `performance.now`). */
  readonly now?: () => number;
}

/**
 * Tracks whether the sync loop is making progress, for `/livez` and the systemd watchdog (a bare
 * timer only proves that the event loop runs; docs/platform.md §2). The composition root wraps
 * the reconcile pass: `passStarted()` before, `passFinished()` after (whatever its outcome: a failed
 * pass that will be retried is still progress). Idle between passes is healthy until no pass has
 * finished for `factor × expectedIntervalMs`.
 */
export class ProgressTracker {
  private readonly limitMs: number;
  private readonly maxPassMs: number;
  private readonly now: () => number;
  private lastProgressAt: number;
  private passStartedAt: number | undefined;

  constructor(options: ProgressTrackerOptions) {
    this.limitMs = options.expectedIntervalMs * (options.factor ?? 3);
    this.maxPassMs = options.maxPassMs ?? 120_000;
    this.now = options.now ?? (() => performance.now());
    this.lastProgressAt = this.now();
  }

  passStarted(): void {
    this.passStartedAt = this.now();
  }

  passFinished(): void {
    this.passStartedAt = undefined;
    this.lastProgressAt = this.now();
  }

  /** Progress that is not a pass (e.g. the initial sync became possible); restarts the idle clock. */
  mark(): void {
    this.lastProgressAt = this.now();
  }

  /** Bound, so it can be handed over as is: `notifier.startWatchdog(tracker.isProgressing)`. */
  readonly isProgressing = (): boolean => this.check().ok;

  /** Bound, so it can be handed over as is: `startHealthServer({ progress: tracker.check, … })`. */
  readonly check = (): CheckResult => {
    const now = this.now();
    if (this.passStartedAt !== undefined) {
      const running = now - this.passStartedAt;
      if (running > this.maxPassMs) {
        return { ok: false, detail: `reconcile pass running for ${Math.round(running)} ms (limit ${this.maxPassMs} ms)` };
      }
      return { ok: true, detail: `reconcile pass running for ${Math.round(running)} ms` };
    }
    const idle = now - this.lastProgressAt;
    if (idle > this.limitMs) {
      return { ok: false, detail: `no reconcile pass finished for ${Math.round(idle)} ms (limit ${this.limitMs} ms)` };
    }
    return { ok: true, detail: `last reconcile pass finished ${Math.round(idle)} ms ago` };
  };
}
