import { performance } from 'node:perf_hooks';
import { backgroundClock, type Clock } from '../time/clock.js';
import type { CheckResult } from './checks.js';

/**
 * Liveness answers "is this process wedged?" (docs/platform.md §5): the event loop must be
 * responsive and the sync loop must be making progress. Neither looks at a peer.
 */

export interface EventLoopLagProbeOptions {
  /** Period of the heartbeat timer (default {@link HEARTBEAT_INTERVAL_MS}). */
  readonly intervalMs?: number;
  /** A tick later than this counts as the loop having been blocked (default 2000 ms). */
  readonly thresholdMs?: number;
  /** How long a block keeps liveness failed after it ended (default 10 000 ms). */
  readonly windowMs?: number;
  /** Schedules the heartbeat and tells the time (default: monotonic, timers that do not hold the process). */
  readonly clock?: Clock;
  /** Called with each tick's lateness in ms (>= 0): the samples of the `nodejs_eventloop_lag_*` metrics. */
  readonly onLag?: (lagMs: number) => void;
}

/**
 * The heartbeat period. It is the most frequent wake-up of an idle daemon (docs/design.md §5), and on a
 * paravirtualised dom0 every wake-up of an idle process costs about 0.5-1 ms of CPU (docs/platform.md §7):
 * one a second keeps an idle daemon near 0.1 %, and still catches every block longer than threshold +
 * period (3 s with the defaults) and, with a probability of about (block - threshold) / period, the shorter
 * ones above the threshold.
 */
export const HEARTBEAT_INTERVAL_MS = 1000;

/**
 * Timer-drift probe: a heartbeat timer notes how late each tick fires. Lateness beyond the threshold
 * means the loop was blocked that long (a huge synchronous parse, a runaway loop, swap). A request
 * served right after a block sees the overdue tick too, since `check()` also measures the time since
 * the last tick. Each tick's lateness also feeds the event-loop lag metrics (`onLag`), so one timer
 * serves both.
 */
export class EventLoopLagProbe {
  private readonly intervalMs: number;
  private readonly thresholdMs: number;
  private readonly windowMs: number;
  private readonly clock: Clock;
  private readonly onLag: ((lagMs: number) => void) | undefined;
  private timer: unknown;
  private running = false;
  private lastTickAt: number;
  private lastBlockAt: number | undefined;
  private lastBlockMs = 0;
  private maxLagMs = 0;

  constructor(options: EventLoopLagProbeOptions = {}) {
    this.intervalMs = options.intervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.thresholdMs = options.thresholdMs ?? 2000;
    this.windowMs = options.windowMs ?? 10_000;
    this.clock = options.clock ?? backgroundClock;
    this.onLag = options.onLag;
    this.lastTickAt = this.clock.now();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastTickAt = this.clock.now();
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Records one tick; the timer calls it, and tests that drive the clock by hand. */
  tick(): void {
    const now = this.clock.now();
    const lagMs = Math.max(0, now - this.lastTickAt - this.intervalMs);
    this.observeLag(lagMs, now);
    this.onLag?.(lagMs);
    this.lastTickAt = now;
  }

  check(): CheckResult {
    const now = this.clock.now();
    if (this.running) this.observeLag(now - this.lastTickAt - this.intervalMs, now);
    if (this.lastBlockAt !== undefined && now - this.lastBlockAt <= this.windowMs) {
      const ago = Math.round(now - this.lastBlockAt);
      return {
        ok: false,
        detail: `event loop blocked for ${Math.round(this.lastBlockMs)} ms, ${ago} ms ago (threshold ${this.thresholdMs} ms)`,
      };
    }
    return { ok: true, detail: `max event loop lag ${Math.round(this.maxLagMs)} ms` };
  }

  /** One timer at a time, re-armed from each tick, as `setInterval` does. */
  private arm(): void {
    this.timer = this.clock.setTimeout(() => {
      if (!this.running) return;
      this.tick();
      this.arm();
    }, this.intervalMs);
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
