import { Backoff, DEFAULT_BACKOFF, type BackoffPolicy } from '../time/backoff.js';
import { realClock, type Clock } from '../time/clock.js';

/**
 * What one pass reports. `done`: the pass finished (converged or wrote its changes). `retry`: it could
 * not finish (a transaction failed, a peer is away, rows are pending) and should run again after a
 * backoff; `error` is kept for the status output.
 */
export type PassOutcome = { readonly outcome: 'done' } | { readonly outcome: 'retry'; readonly error?: unknown };

export interface ReconcileSchedulerOptions {
  /** Runs one pass. Must not throw for expected failures; a throw is treated as `retry` with that error. */
  readonly pass: () => Promise<PassOutcome>;
  /** Delays between failed passes (default `DEFAULT_BACKOFF`; the daemon caps it at `retryMaxDelayMs`). */
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
  readonly clock?: Clock;
}

export interface ReconcileSchedulerStatus {
  readonly running: boolean;
  readonly dirty: boolean;
  readonly failures: number;
  readonly retryInMs: number | undefined;
  readonly lastError: unknown;
}

/**
 * The scheduling contract of docs/design.md §4: triggers only mark work dirty; one pass runs at a time; a trigger
 * that arrives while a pass runs causes exactly one more pass after it; a failed pass is requeued with
 * capped exponential backoff. Triggers that arrive during a backoff wait for it (so a persistent failure
 * cannot be turned into a busy loop by a stream of events), except `kick()`, which a reconnect or an
 * operator's `flush-cache` uses to retry at once.
 */
export class ReconcileScheduler {
  private readonly options: ReconcileSchedulerOptions;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private dirty = false;
  private running: Promise<void> | undefined;
  private timer: unknown;
  private timerDueAt: number | undefined;
  private lastError: unknown;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(options: ReconcileSchedulerOptions) {
    this.options = options;
    this.clock = options.clock ?? realClock;
    this.backoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF, options.random);
  }

  /** Marks work dirty and schedules a pass unless one is running or a backoff is pending. */
  trigger(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.running || this.timer !== undefined) return;
    this.schedule(0);
  }

  /** Like `trigger`, but cancels a pending backoff so the pass runs now (reconnects, flush-cache). */
  kick(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.running) return;
    this.cancelTimer();
    this.schedule(0);
  }

  status(now: number = this.clock.now()): ReconcileSchedulerStatus {
    return {
      running: this.running !== undefined,
      dirty: this.dirty,
      failures: this.backoff.failures,
      retryInMs: this.timerDueAt === undefined ? undefined : Math.max(0, this.timerDueAt - now),
      lastError: this.lastError,
    };
  }

  /** Resolves once nothing is dirty, running or scheduled (used by `--once` and tests). */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops scheduling; resolves after the pass in flight (if any) has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer();
    await this.running;
    this.dirty = false;
    this.notifyIdle();
  }

  private isIdle(): boolean {
    return !this.dirty && this.running === undefined && this.timer === undefined;
  }

  private schedule(ms: number): void {
    this.timerDueAt = this.clock.now() + ms;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerDueAt = undefined;
      this.runPass();
    }, ms);
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDueAt = undefined;
  }

  private runPass(): void {
    if (this.stopped || this.running) return;
    this.dirty = false;
    this.running = this.execute().finally(() => {
      this.running = undefined;
      this.afterPass();
    });
  }

  private async execute(): Promise<void> {
    let result: PassOutcome;
    try {
      result = await this.options.pass();
    } catch (error) {
      result = { outcome: 'retry', error };
    }
    if (result.outcome === 'done') {
      this.backoff.success(this.clock.now(), true);
      this.lastError = undefined;
    } else {
      this.backoff.failure(this.clock.now());
      this.lastError = result.error;
      this.dirty = true;
    }
  }

  private afterPass(): void {
    if (this.stopped) {
      this.notifyIdle();
      return;
    }
    if (this.dirty) {
      this.schedule(this.backoff.timeUntilNext(this.clock.now()));
      return;
    }
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (!this.isIdle() && !this.stopped) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
