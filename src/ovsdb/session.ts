import type { Logger } from 'pino';
import { describeError, isCodedError } from '../errors.js';
import { createFailureSummarizer, type FailureSummarizer } from '../log.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffPolicy } from '../time/backoff.js';
import { delay, realClock, type Clock } from '../time/clock.js';

/**
 * Phases of the reconnecting session. `connected`: the socket is up, monitoring not yet established;
 * `backoff`: waiting before the next attempt; `closed`: `close()` was called (terminal).
 */
export type SessionPhase = 'idle' | 'connecting' | 'connected' | 'monitoring' | 'backoff' | 'closed';

/** What the session needs from a connection. */
export interface SessionConnection {
  /** Resolves (never rejects) with the reason once the connection is gone. */
  readonly closed: Promise<unknown>;
  close(): void;
}

export interface SessionOptions<C extends SessionConnection> {
  readonly logger: Logger;
  /** For log lines: the remote as the operator wrote it. */
  readonly target: string;
  /** Opens one connection; must reject promptly when `signal` aborts. */
  readonly connect: (signal: AbortSignal) => Promise<C>;
  /** Establishes monitoring on a fresh connection; a rejection fails this connection (then backoff). */
  readonly setup: (conn: C) => Promise<void>;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
  readonly clock?: Clock;
  /** Observes every phase change (after it is logged). Must not throw. */
  readonly onPhase?: (phase: SessionPhase, reason?: unknown) => void;
}

/**
 * Keeps one connection monitored: connect → setup → wait for the close → capped exponential backoff with
 * jitter (`Backoff`, reset once monitoring is reached) → again, until `close()`. Logs one line per
 * state change at info/warn; an attempt that repeats the previous failure logs at debug only, so a server
 * that is down for an hour does not flood the journal. `close()` stops everything: no timer, no socket and
 * no pending promise are left behind.
 */
export class OvsdbSession<C extends SessionConnection> {
  private readonly options: SessionOptions<C>;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private current: C | undefined;
  private phaseValue: SessionPhase = 'idle';
  private connectionsCount = 0;
  /** Phase+reason combinations already logged since monitoring was last reached. */
  private loggedInSeries = new Set<string>();
  /** Failed connection attempts by phase+reason: first at warn, repeats counted and summarised. */
  private readonly failures: FailureSummarizer;
  private readonly failingKeys = new Set<string>();

  constructor(options: SessionOptions<C>) {
    this.options = options;
    this.log = options.logger;
    this.clock = options.clock ?? realClock;
    this.backoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF, options.random);
    this.failures = createFailureSummarizer(options.logger, { now: () => this.clock.now() });
  }

  get phase(): SessionPhase {
    return this.phaseValue;
  }

  /** The connection when one is up (`connected` or `monitoring`). */
  get connection(): C | undefined {
    return this.current;
  }

  /** Successful connections after the first one. */
  get reconnects(): number {
    return Math.max(0, this.connectionsCount - 1);
  }

  /** Failed attempts since monitoring was last reached. */
  get failedAttempts(): number {
    return this.backoff.failures;
  }

  start(): void {
    if (this.loop !== undefined || this.abort.signal.aborted) return;
    this.loop = this.run();
  }

  /** Stops reconnecting and closes the current connection; resolves when the loop has ended. */
  async close(): Promise<void> {
    if (!this.abort.signal.aborted) this.abort.abort();
    this.current?.close();
    if (this.loop !== undefined) await this.loop;
    else this.setPhase('closed');
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      this.setPhase('connecting');
      let reason: unknown;
      let conn: C | undefined;
      try {
        conn = await this.options.connect(signal);
        this.current = conn;
        if (this.stopping()) break;
        this.connectionsCount++;
        this.setPhase('connected');
        await this.options.setup(conn);
        if (this.stopping()) break;
        // Reaching monitoring is a final success: the next loss retries after `initialMs` again.
        this.backoff.success(this.clock.now(), true);
        this.loggedInSeries.clear();
        this.setPhase('monitoring');
        reason = await conn.closed;
      } catch (err) {
        reason = err;
        conn?.close();
      }
      this.current = undefined;
      if (this.stopping()) break;
      const delayMs = this.backoff.failure(this.clock.now());
      this.setPhase('backoff', reason, delayMs);
      await delay(this.clock, delayMs, signal).catch(() => undefined);
    }
    this.current?.close();
    this.current = undefined;
    this.setPhase('closed');
  }

  /** A call, not a property read, so that the checks after each await are not narrowed away. */
  private stopping(): boolean {
    return this.abort.signal.aborted;
  }

  private setPhase(phase: SessionPhase, reason?: unknown, delayMs?: number): void {
    const previous = this.phaseValue;
    if (phase === previous) return;
    this.phaseValue = phase;
    this.logPhase(phase, previous, reason, delayMs);
    try {
      this.options.onPhase?.(phase, reason);
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'ovsdb: a state listener threw');
    }
  }

  private logPhase(phase: SessionPhase, previous: SessionPhase, reason: unknown, delayMs: number | undefined): void {
    const target = this.options.target;
    const code = isCodedError(reason) ? reason.code : reason === undefined ? '' : 'error';
    const key = `${phase}:${code}`;
    const repeat = this.loggedInSeries.has(key);
    this.loggedInSeries.add(key);
    const fields = { remote: target, phase, previous, attempt: this.backoff.failures };
    switch (phase) {
      case 'monitoring': {
        // The first key's recovery line is the "monitoring" line itself (with the failure count).
        let logged = false;
        for (const failed of this.failingKeys) {
          const count = this.failures.failures(failed);
          const msg = logged
            ? `ovsdb: ${target}: ${failed} failures ended`
            : `ovsdb: monitoring ${target} (recovered after ${count} failed attempt${count === 1 ? '' : 's'})`;
          this.failures.recovered(failed, msg, logged ? { remote: target } : fields);
          logged = true;
        }
        this.failingKeys.clear();
        if (!logged) this.log.info(fields, `ovsdb: monitoring ${target}`);
        return;
      }
      case 'closed':
        this.log.info(fields, `ovsdb: session to ${target} closed`);
        return;
      case 'backoff': {
        const msg =
          previous === 'monitoring'
            ? `ovsdb: connection to ${target} lost (${describeError(reason)}); reconnecting in ${delayMs ?? 0} ms`
            : `ovsdb: cannot establish ${target} (${describeError(reason)}); retrying with backoff (next in ${delayMs ?? 0} ms)`;
        if (previous === 'monitoring') {
          this.log.warn({ ...fields, delayMs }, msg);
          return;
        }
        this.failingKeys.add(key);
        this.failures.failure(key, msg, { ...fields, delayMs });
        return;
      }
      default:
        if (repeat) this.log.debug(fields, `ovsdb: ${phase} ${target}`);
        else this.log.info(fields, `ovsdb: ${phase} ${target}`);
    }
  }
}
