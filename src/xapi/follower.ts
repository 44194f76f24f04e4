import type { Logger } from 'pino';
import { AbortedError, CodedError, describeError } from '../errors.js';
import { createFailureSummarizer, type FailureSummarizer } from '../log.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffPolicy } from '../time/backoff.js';
import { delay, type Clock } from '../time/clock.js';
import type { XapiValue } from './codec/types.js';
import { XapiError } from './errors.js';
import { parseEventBatch, tokenGeneration, type EventBatch } from './events.js';
import { fetchThisHost, getPool, getPoolRef, isUndecodable } from './lookups.js';
import type { HostPlacement, HostRecord, PoolRecord } from './records.js';
import { expectString } from './records.js';
import type { XapiCaller } from './session.js';

/** `syncing`: (re)fetching; `live`: following events; `down`: XAPI unreachable, retrying. */
export type XapiWatcherPhase = 'idle' | 'syncing' | 'live' | 'down';

/** Why an `event.from` in flight was abandoned (see `EventFollower.stats`). */
export type ReissueReason = 'resubscribe' | 'resync';

/** What a sync read before the objects of interest. */
export interface SyncSnapshot {
  readonly host: HostRecord;
  readonly placement: HostPlacement;
  readonly pool: PoolRecord | undefined;
}

/** What the follower asks of the rest of the watcher. */
export interface FollowerHooks {
  /** Re-reads every object of interest and applies it with `snapshot`; throws when XAPI fails. */
  synced(snapshot: SyncSnapshot, signal: AbortSignal): Promise<void>;
  /** The `event.from` classes: `pool`, `host/<ref>` and one per followed object. */
  subscriptions(hostRef: string | undefined): string[];
  applyBatch(batch: EventBatch): void;
  /** XAPI cannot be reached: what was pending becomes unknown. */
  unreachable(): void;
  phase(phase: XapiWatcherPhase): void;
  /** A long-poll in flight was abandoned (it stays blocked on the master until it times out). */
  reissued(reason: ReissueReason): void;
}

export interface EventFollowerOptions {
  readonly caller: XapiCaller;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly hooks: FollowerHooks;
  readonly eventTimeoutSec?: number | undefined;
  readonly backoff?: BackoffPolicy | undefined;
  readonly random?: (() => number) | undefined;
  /** The inventory's `INSTALLATION_UUID` (see `fetchThisHost`). */
  readonly thisHostUuid?: string | undefined;
  /** See `XapiWatcherOptions.tokenProbeMs`. */
  readonly tokenProbeMs?: number | undefined;
  /** See `XapiWatcherOptions.resubscribeIntervalMs`. */
  readonly resubscribeIntervalMs?: number | undefined;
}

/** A point of the event stream a lookup started from (see `rewindTo`). */
export interface StreamMark {
  readonly token: string;
  readonly generation: number;
}

export const DEFAULT_TOKEN_PROBE_MS = 300_000;
export const DEFAULT_RESUBSCRIBE_INTERVAL_MS = 2_000;
/** A lone interest growth waits this long, so the reconcile pass its lookups enable runs first. */
const RESUBSCRIBE_DELAY_MS = 10;
const OUTAGE_KEY = 'xapi-unavailable';

/**
 * Follows XAPI's event stream (docs/xapi.md §5): token from `event.inject("pool", poolRef)` first,
 * then the initial fetch, then `event.from` long-polls; exactly one in flight when idle. Resynchronises
 * on a re-login, a rejected or stale token, or on request; backs off while XAPI is unreachable.
 *
 * Token contract (xapi-project/xen-api ocaml/xapi/xapi_event.ml:549-589, 611-645): a reply's token is the
 * generation of the last change that *matched our subscriptions* (unchanged at a timeout), never the
 * database's current generation. So the follower only ever sends back the token it was given (or a
 * rewound one), and never compares tokens to decide what it has seen.
 */
export class EventFollower {
  private readonly o: EventFollowerOptions;
  private readonly backoff: Backoff;
  /** Paces the resyncs caused by `event.from` answers that cannot be decoded. */
  private readonly decodeBackoff: Backoff;
  private readonly outage: FailureSummarizer;
  private currentPhase: XapiWatcherPhase = 'idle';
  private token = '';
  private rewoundToken: string | undefined;
  private syncedGeneration = -1;
  private currentHostRef: string | undefined;
  private poolRef: string | undefined;
  private subscribed = new Set<string>();
  private stopController: AbortController | undefined;
  private pollController: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private resyncRequested = false;
  /** Consecutive `event.from` answers that could not be decoded. */
  private undecodablePolls = 0;
  private resyncAfterUndecodable = false;
  /** When the token last moved (or was obtained): see `probeToken`. */
  private tokenMovedAt = 0;
  private injectUnknownLogged = false;
  private resubscribeTimer: unknown;
  private lastReissueAt = Number.NEGATIVE_INFINITY;
  private reissues = 0;

  constructor(options: EventFollowerOptions) {
    this.o = options;
    this.backoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF, options.random);
    this.decodeBackoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF, options.random);
    this.outage = createFailureSummarizer(options.logger, { now: () => options.clock.now() });
  }

  get phase(): XapiWatcherPhase {
    return this.currentPhase;
  }

  get hostRef(): string | undefined {
    return this.currentHostRef;
  }

  /** Long-polls abandoned in flight so far (each stays blocked on the master until its timeout). */
  get eventFromReissues(): number {
    return this.reissues;
  }

  start(): void {
    if (this.loop !== undefined) return;
    const controller = new AbortController();
    this.stopController = controller;
    this.loop = this.run(controller.signal).catch((err: unknown) => {
      // run() handles its own failures; this guards against a bug turning into an unhandled rejection.
      this.o.logger.error({ err: describeError(err) }, 'XAPI watcher loop ended unexpectedly');
    });
  }

  async stop(): Promise<void> {
    const controller = this.stopController;
    if (controller === undefined) return;
    controller.abort(new AbortedError('XAPI watcher stopped'));
    this.o.clock.clearTimeout(this.resubscribeTimer);
    this.resubscribeTimer = undefined;
    await this.loop;
    this.loop = undefined;
    this.stopController = undefined;
    this.setPhase('idle');
  }

  /** Refetches everything of interest without dropping what is known. */
  requestResync(): void {
    this.resyncRequested = true;
    this.abandonPoll('resync');
  }

  /** Where the stream is now, for a lookup about to start (see `rewindTo`). */
  mark(): StreamMark {
    return { token: this.token, generation: this.syncedGeneration };
  }

  /**
   * Newly followed objects were fetched at some point after `mark`; a change made to one of them after
   * that fetch but before the long-poll subscribes to it would be covered by the token the running poll
   * returns, and so lost. The next poll therefore starts from `mark` again (events on objects already
   * followed come twice; applying a snapshot twice is harmless), and an answer to a poll issued before
   * now may not move the token past it. A mark from before the last sync is void.
   */
  rewindTo(mark: StreamMark): void {
    if (mark.generation !== this.syncedGeneration || this.rewoundToken !== undefined) return;
    this.rewoundToken = mark.token;
    this.token = mark.token;
  }

  /**
   * Objects of interest may be missing from the running poll's subscriptions. Nothing is lost by
   * waiting (`rewindTo`), but their later changes arrive only once a poll subscribed to them runs. An
   * abandoned `event.from` is not cancelled on the master: it stays blocked until its timeout or a
   * matching change (xapi_event.ml:438-458 waits on the database only, not the client's connection). So
   * the running poll is abandoned at most once per `resubscribeIntervalMs` (default 2 s): a lone growth
   * is subscribed after RESUBSCRIBE_DELAY_MS, a burst costs one re-issue per interval, and at most
   * eventTimeoutSec / interval (15 by default) abandoned calls per host are ever blocked on the master.
   * The per-port path does not wait on this: a new port's records come from its lookup.
   */
  interestGrew(): void {
    if (this.resubscribeTimer !== undefined || this.pollController === undefined) return;
    const now = this.o.clock.now();
    const interval = this.o.resubscribeIntervalMs ?? DEFAULT_RESUBSCRIBE_INTERVAL_MS;
    const wait = Math.max(RESUBSCRIBE_DELAY_MS, this.lastReissueAt + interval - now);
    this.resubscribeTimer = this.o.clock.setTimeout(() => {
      this.resubscribeTimer = undefined;
      if (this.pollController === undefined) return;
      const wanted = this.o.hooks.subscriptions(this.currentHostRef);
      if (wanted.some((s) => !this.subscribed.has(s))) this.abandonPoll('resubscribe');
    }, wait);
  }

  private abandonPoll(reason: ReissueReason): void {
    const controller = this.pollController;
    if (controller === undefined || controller.signal.aborted) return;
    controller.abort(new AbortedError(reason));
    this.reissues += 1;
    this.lastReissueAt = this.o.clock.now();
    this.o.hooks.reissued(reason);
  }

  private setPhase(phase: XapiWatcherPhase): void {
    if (phase === this.currentPhase) return;
    this.currentPhase = phase;
    this.o.logger.info({ phase }, 'XAPI watcher state');
    this.o.hooks.phase(phase);
  }

  private async run(stop: AbortSignal): Promise<void> {
    const clock = this.o.clock;
    while (!stop.aborted) {
      try {
        if (this.resyncAfterUndecodable) {
          this.resyncAfterUndecodable = false;
          // The first re-read is immediate; if answers keep failing to decode, re-reads back off.
          const wait = this.decodeBackoff.failures > 0 ? this.decodeBackoff.timeUntilNext(clock.now()) : 0;
          this.decodeBackoff.failure(clock.now());
          if (wait > 0) await delay(clock, wait, stop);
        }
        this.setPhase('syncing');
        await this.sync(stop);
        this.backoff.success(clock.now(), true);
        this.setPhase('live');
        this.outage.recovered(OUTAGE_KEY, 'XAPI available again');
        while (!isAborted(stop) && !this.resyncRequested) await this.pollOnce(stop);
      } catch (err) {
        if (isAborted(stop)) break;
        if (err instanceof XapiError && err.code === 'EVENT_FROM_TOKEN_PARSE_FAILURE') {
          this.o.logger.info('XAPI rejected the event token; resynchronising');
          continue;
        }
        this.setPhase('down');
        this.o.hooks.unreachable();
        const retryInMs = this.backoff.failure(clock.now());
        this.outage.failure(OUTAGE_KEY, 'XAPI unavailable', { err: describeError(err), retryInMs });
        try {
          await delay(clock, retryInMs, stop);
        } catch {
          break;
        }
      }
    }
  }

  /** Token first, then the fetch (docs/xapi.md §5.2): nothing changed in between can be missed. */
  private async sync(signal: AbortSignal): Promise<void> {
    this.resyncRequested = false;
    this.rewoundToken = undefined;
    const caller = this.o.caller;
    const opts = { signal };
    this.poolRef = await getPoolRef(caller, opts);
    this.token = await this.initialToken(this.poolRef, signal);
    const generation = caller.generation;
    const { host, placement, notInPool } = await fetchThisHost(caller, opts, this.o.thisHostUuid);
    if (notInPool !== undefined) {
      this.o.logger.error(
        { installationUuid: notInPool, host: host.uuid },
        'XAPI knows no host with the inventory INSTALLATION_UUID (is --xapi this host\'s pool?); following the host of the XAPI session instead',
      );
    }
    const pool = await getPool(caller, opts);
    this.currentHostRef = host.ref;
    await this.o.hooks.synced({ host, placement, pool }, signal);
    this.syncedGeneration = generation;
    this.tokenMovedAt = this.o.clock.now();
  }

  /**
   * `event.inject("pool", poolRef)`: the database generation before the call (xapi_event.ml:779-804).
   * A XAPI without it (`MESSAGE_METHOD_UNKNOWN`) gets token `""`, as Xen Orchestra does
   * (xen-orchestra packages/xen-api/index.mjs:1467-1473): the first `event.from` then reports every
   * subscribed object, which the fetch that follows already read; applying it twice is harmless.
   */
  private async initialToken(poolRef: string | undefined, signal: AbortSignal): Promise<string> {
    if (poolRef === undefined) return '';
    try {
      return expectString(await this.o.caller.call('event.inject', ['pool', poolRef], { signal }), 'event.inject answer');
    } catch (err) {
      if (!(err instanceof XapiError && err.code === 'MESSAGE_METHOD_UNKNOWN')) throw err;
      if (!this.injectUnknownLogged) {
        this.injectUnknownLogged = true;
        this.o.logger.info('XAPI has no event.inject; following events from token "" after each fetch');
      }
      return '';
    }
  }

  private async pollOnce(stop: AbortSignal): Promise<void> {
    const controller = new AbortController();
    const onStop = (): void => {
      controller.abort(new AbortedError('XAPI watcher stopped'));
    };
    stop.addEventListener('abort', onStop, { once: true });
    this.pollController = controller;
    const subs = this.o.hooks.subscriptions(this.currentHostRef);
    this.subscribed = new Set(subs);
    // This poll covers every followed object from the (possibly rewound) token: it may advance it.
    this.rewoundToken = undefined;
    const sent = this.token;
    const timeoutSec = this.o.eventTimeoutSec ?? 30;
    let result: XapiValue;
    try {
      // A non-integral float: XML-RPC hosts before 7.3 reject an int timeout (docs/xapi.md §5.1, XO's 60.1).
      result = await this.o.caller.call('event.from', [subs, sent, timeoutSec + 0.1], {
        signal: controller.signal,
        timeoutMs: (timeoutSec + 30) * 1000,
        retries: 0,
      });
    } catch (err) {
      // Abandoned to re-subscribe or resync: the loop re-issues (same token) or resyncs.
      if (controller.signal.aborted && !stop.aborted && err instanceof CodedError && err.code === 'ABORTED') return;
      if (isUndecodable(err) && !stop.aborted) {
        this.undecodable(err);
        return;
      }
      throw err;
    } finally {
      stop.removeEventListener('abort', onStop);
      this.pollController = undefined;
    }
    this.undecodablePolls = 0;
    this.decodeBackoff.success(this.o.clock.now(), true);
    if (this.o.caller.generation !== this.syncedGeneration) {
      // A re-login happened: XAPI may have restarted, so the snapshot is suspect (docs/xapi.md §5.2 step 5).
      this.resyncRequested = true;
      return;
    }
    const batch = parseEventBatch(result);
    if (batch === undefined) {
      this.o.logger.warn('malformed event.from answer; resynchronising');
      this.resyncRequested = true;
      return;
    }
    this.adopt(batch.token, sent);
    if (batch.malformed > 0) this.o.logger.warn({ count: batch.malformed }, 'malformed event in event.from answer; ignored');
    this.o.hooks.applyBatch(batch);
    if (batch.token === sent) await this.probeToken(stop);
  }

  /** A reply's token, unless a lookup rewound the stream meanwhile (see `rewindTo`). */
  private adopt(token: string, sent: string): void {
    if (this.rewoundToken === undefined) this.token = token;
    if (token !== sent) this.tokenMovedAt = this.o.clock.now();
  }

  /**
   * An answer that did not decode: asking again from the same token loses nothing and costs one call.
   * A second in a row re-reads the objects of interest (a resync, whose lookups contain an odd record
   * to its own object, which is then no longer subscribed), without going `down`.
   */
  private undecodable(err: CodedError): void {
    this.undecodablePolls += 1;
    if (this.undecodablePolls === 1) {
      this.o.logger.warn({ err: describeError(err) }, 'undecodable event.from answer; asking again from the same token');
      return;
    }
    this.undecodablePolls = 0;
    this.o.logger.warn({ err: describeError(err) }, 'event.from answers cannot be decoded; re-reading the objects of interest one by one where needed');
    this.resyncAfterUndecodable = true;
    this.resyncRequested = true;
  }

  /**
   * A token ahead of the database (xapi restarted on an older database, or a new master whose copy
   * lags) is not rejected: `event.from` reports only changes newer than it (`fold_over_recent since`,
   * xapi_event.ml:588-589, ocaml/database/db_cache_types.ml:265-286), so every poll times out with
   * the token unchanged, however much changes. When the token has not moved for `tokenProbeMs`, the
   * follower asks `event.inject("pool", …)`, which answers the database's current generation
   * (xapi_event.ml:779-804). A write stamps rows with the current generation and then increments it
   * (ocaml/database/db_cache_types.ml:671-684), so every change a healthy token can stand for is at
   * most the inject's answer: a generation below the token's means the token is ahead, and the view
   * resyncs. Otherwise the inject's own change to the pool row, which the follower subscribes to,
   * returns the next poll at once and moves the token. So a stale token is caught within
   * `tokenProbeMs` plus one poll, at the cost of one call (and one pool event) per idle period.
   */
  private async probeToken(stop: AbortSignal): Promise<void> {
    const now = this.o.clock.now();
    if (now - this.tokenMovedAt < (this.o.tokenProbeMs ?? DEFAULT_TOKEN_PROBE_MS) || this.poolRef === undefined) return;
    this.tokenMovedAt = now;
    let current: string;
    try {
      current = expectString(await this.o.caller.call('event.inject', ['pool', this.poolRef], { signal: stop }), 'event.inject answer');
    } catch (err) {
      if (err instanceof XapiError && err.code === 'MESSAGE_METHOD_UNKNOWN') return;
      throw err;
    }
    const ours = tokenGeneration(this.token);
    const database = tokenGeneration(current);
    if (ours === undefined || database === undefined || ours <= database) return;
    this.o.logger.warn({ token: this.token, database: current }, 'XAPI event token is ahead of its database (restarted on an older one?); resynchronising');
    this.resyncRequested = true;
  }
}

/** Reads the flag afresh (TypeScript narrows a property read across awaits). */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}
