import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import type { BackoffPolicy } from '../time/backoff.js';
import { realClock, type Clock } from '../time/clock.js';
import { Anticipation } from './anticipation.js';
import { LookupBatcher, type XapiInterestDelta } from './batcher.js';
import { emptyChange, isEmptyChange, XapiCache, type XapiChange } from './cache.js';
import { CrowdedNetworks } from './crowded.js';
import { DeletionAudit } from './deletions.js';
import { applyEvent, type EventBatch, type EventSink } from './events.js';
import { EventFollower, type ReissueReason, type SyncSnapshot, type XapiWatcherPhase } from './follower.js';
import type { NetworkRecord } from './records.js';
import type { XapiCaller } from './session.js';

export type { XapiInterestDelta } from './batcher.js';
export type { ReissueReason, XapiWatcherPhase } from './follower.js';

export interface XapiWatcherEvents {
  change: [XapiChange];
  phase: [XapiWatcherPhase];
  /** An `event.from` in flight was abandoned (see `XapiWatcher.stats`). */
  reissue: [ReissueReason];
}

export interface XapiWatcherOptions {
  readonly caller: XapiCaller;
  readonly logger: Logger;
  /** The one clock of every timer and retry (default `realClock`). */
  readonly clock?: Clock;
  /** event.from server-side timeout (docs/xapi.md §5.1; 30–60 s). Default 30. */
  readonly eventTimeoutSec?: number;
  readonly lookupBatchSize?: number;
  /** Interest changes within this window are looked up as one batch per class. Default 0: the next turn. */
  readonly coalesceMs?: number;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
  /**
   * This host's `INSTALLATION_UUID` (xensource-inventory): the host is found by it, not by
   * `session.get_this_host`, which names the master after a redirected login (see `fetchThisHost`).
   */
  readonly thisHostUuid?: string | undefined;
  /**
   * A network whose event snapshot lists more VIFs than this (default 1024) is crowded: its `VIFs` set
   * is pool-wide, so every VIF plugged or unplugged anywhere on it would send this host the whole list
   * again. A crowded network is not subscribed to; its fields are re-read every `networkRefreshMs`.
   */
  readonly crowdedNetworkVifs?: number;
  /** Default 10 s. */
  readonly networkRefreshMs?: number;
  /** A token that has not moved for this long is checked against the database (default 5 min; see `EventFollower.probeToken`). */
  readonly tokenProbeMs?: number;
  /** At most one abandoned long-poll per this interval (default 2 s; see `EventFollower.interestGrew`). */
  readonly resubscribeIntervalMs?: number;
  /** At most one check for deletions missed per this interval (default 60 s; see `DeletionAudit`). */
  readonly deletionCheckMs?: number;
}

/** Counters a metrics exporter reads. */
export interface XapiWatcherStats {
  /** `event.from` calls abandoned in flight (each stays blocked on the master until its timeout). */
  readonly eventFromReissues: number;
}

/**
 * Follows XAPI for the objects this host's ports and bridges depend on (docs/xapi.md §5, §10.3),
 * so cost follows this host's objects, not the pool's. The parts, each in its own module:
 * - `EventFollower`: token, sync, `event.from` long-polls, subscriptions, backoff;
 * - `LookupBatcher`: the uuids and bridge names of interest and their batched lookups; a lookup
 *   rewinds the follower's token (`StreamControl.rewindTo`) so nothing changed meanwhile is lost;
 * - `Anticipation`: the VMs placed on this host and their VIFs, fetched ahead of their ports;
 * - `CrowdedNetworks`: networks re-read periodically instead of followed by events;
 * - `DeletionAudit`: deletions whose `del` xapi no longer reports;
 * - `events.ts`: pure parsing and application of an event to the cache.
 */
export class XapiWatcher extends EventEmitter<XapiWatcherEvents> {
  readonly cache = new XapiCache();
  private readonly o: XapiWatcherOptions;
  private readonly follower: EventFollower;
  private readonly batcher: LookupBatcher;
  private readonly anticipation: Anticipation;
  private readonly crowded: CrowdedNetworks;
  private readonly deletions: DeletionAudit;
  private readonly sink: EventSink;
  private running = false;

  constructor(options: XapiWatcherOptions) {
    super();
    this.o = options;
    const clock = options.clock ?? realClock;
    const { caller, logger } = options;
    const cache = this.cache;
    const emitChange = (change: XapiChange): void => {
      if (!isEmptyChange(change)) this.emit('change', change);
    };
    const isLive = (): boolean => this.follower.phase === 'live';
    this.follower = new EventFollower({
      caller,
      logger,
      clock,
      eventTimeoutSec: options.eventTimeoutSec,
      backoff: options.backoff,
      random: options.random,
      thisHostUuid: options.thisHostUuid,
      tokenProbeMs: options.tokenProbeMs,
      resubscribeIntervalMs: options.resubscribeIntervalMs,
      hooks: {
        synced: (snapshot, signal) => this.synced(snapshot, signal),
        subscriptions: (hostRef) => this.subscriptions(hostRef),
        applyBatch: (batch) => {
          this.applyBatch(batch);
        },
        unreachable: () => {
          this.anticipation.unreachable();
          this.batcher.unreachable();
        },
        phase: (phase) => {
          this.emit('phase', phase);
          if (phase === 'live') this.batcher.schedule();
        },
        reissued: (reason) => this.emit('reissue', reason),
      },
    });
    this.batcher = new LookupBatcher({
      cache,
      caller,
      logger,
      clock,
      emitChange,
      lookupBatchSize: options.lookupBatchSize,
      coalesceMs: options.coalesceMs,
      anticipation: () => this.anticipation,
      stream: {
        live: isLive,
        down: () => this.follower.phase === 'down',
        mark: () => this.follower.mark(),
        rewindTo: (mark) => {
          this.follower.rewindTo(mark);
        },
        interestGrew: () => {
          this.follower.interestGrew();
        },
        requestResync: () => {
          this.follower.requestResync();
        },
      },
    });
    this.anticipation = new Anticipation({
      cache,
      caller,
      logger,
      wantsVif: (uuid) => this.batcher.interest.vifs.has(uuid),
      wantsVm: (uuid) => this.batcher.interest.vms.has(uuid),
      requestLookup: () => {
        this.batcher.schedule();
      },
    });
    this.crowded = new CrowdedNetworks({
      cache,
      caller,
      logger,
      clock,
      crowdedNetworkVifs: options.crowdedNetworkVifs,
      networkRefreshMs: options.networkRefreshMs,
      isLive,
      apply: (bridge, ref, record, change) => {
        this.applyNetworkRecord(bridge, ref, record, change);
      },
      emitChange,
    });
    this.deletions = new DeletionAudit({ cache, caller, logger, clock, isLive, emitChange, lookupBatchSize: options.lookupBatchSize, minIntervalMs: options.deletionCheckMs });
    const follower = this.follower;
    this.sink = {
      get hostRef() {
        return follower.hostRef;
      },
      vmChanged: (ref, snapshot) => {
        this.anticipation.observeVm(ref, snapshot);
      },
      hostPlacement: (placement) => {
        this.anticipation.observeHost(placement);
      },
      networkChanged: (bridge, ref, record, vifs, change) => {
        if (this.applyNetworkRecord(bridge, ref, record, change)) this.crowded.observe(ref, bridge, vifs);
      },
    };
  }

  get phase(): XapiWatcherPhase {
    return this.follower.phase;
  }

  get stats(): XapiWatcherStats {
    return { eventFromReissues: this.follower.eventFromReissues };
  }

  /**
   * Lookups are queued, scheduled or in flight. Each ends in a `change` for every uuid or bridge name
   * it asked about (known, absent, or unknown when XAPI fails), so a consumer that waits for this to
   * clear is told when the answers are in.
   */
  get lookupsOutstanding(): boolean {
    return this.batcher.outstanding;
  }

  start(signal?: AbortSignal): void {
    if (this.running) return;
    this.running = true;
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    this.batcher.start();
    this.crowded.start();
    this.deletions.start();
    this.follower.start();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.crowded.stop();
    await Promise.all([this.follower.stop(), this.batcher.stop(), this.deletions.stop()]);
  }

  /**
   * Start following `addVifs`/`addVms`/`addBridges`, forget `removeVifs`/`removeVms`/`removeBridges`,
   * O(changed keys). New keys become `pending` and are looked up in a coalesced batch. Adding a key
   * already followed, or removing one not followed, is a no-op.
   */
  changeInterest(delta: XapiInterestDelta): void {
    this.batcher.changeInterest(delta);
  }

  /** Drops every VIF/VM/network lookup (back to `pending`) and refetches everything (`flush-cache`). */
  flushCache(): void {
    this.batcher.flush();
    this.requestResync();
  }

  /** Refetches everything of interest without dropping what is known (periodic safety net). */
  requestResync(): void {
    this.follower.requestResync();
  }

  private async synced(snapshot: SyncSnapshot, signal: AbortSignal): Promise<void> {
    const change = emptyChange();
    await this.batcher.refetchAll(signal, change);
    this.anticipation.reset(snapshot.host.ref, snapshot.placement);
    this.cache.setHost(snapshot.host, change);
    this.cache.setPool(snapshot.pool, change);
    this.deletions.reset();
    if (!isEmptyChange(change)) this.emit('change', change);
  }

  /**
   * Per-object `vif/<ref>`, `vm/<ref>` and `network/<ref>` subscriptions keep event traffic proportional
   * to this host's objects; the list is resent with every `event.from`, though, and past ~4000 refs an
   * XML-RPC request exceeds XAPI's 300 KiB cap (XAPI_REQUEST_TOO_LARGE). Beyond
   * `MAX_OBJECT_SUBSCRIPTIONS` live objects the watcher subscribes to the whole `vif` and `vm` classes
   * instead; events for objects it does not follow are ignored (`applyObjectEventTo`). Networks created
   * later are noticed through `valid_ref_counts`, not events.
   */
  private subscriptions(hostRef: string | undefined): string[] {
    const base = ['pool', hostRef !== undefined ? `host/${hostRef}` : 'host'];
    const vifs = this.cache.vifs.liveRefs();
    const vms = this.cache.vms.liveRefs();
    // Networks are few and stay per-ref even past the cap: the class would carry every network's VIFs set.
    const networks = this.cache.networks
      .liveRefs()
      .filter((r) => !this.crowded.has(r))
      .map((r) => `network/${r}`);
    if (vifs.length + vms.length + networks.length > MAX_OBJECT_SUBSCRIPTIONS) return [...base, ...networks, 'vif', 'vm'];
    return [...base, ...networks, ...vifs.map((r) => `vif/${r}`), ...vms.map((r) => `vm/${r}`)];
  }

  private applyBatch(batch: EventBatch): void {
    const dels = new Map<string, number>();
    for (const ev of batch.events) if (ev.operation === 'del') dels.set(ev.cls, (dels.get(ev.cls) ?? 0) + 1);
    const networkCount = this.deletions.note(batch.validRefCounts, dels);
    if (networkCount.moved) this.batcher.networkCountMoved(networkCount.dropped);
    const change = emptyChange();
    for (const ev of batch.events) {
      try {
        applyEvent(this.cache, ev, change, this.sink);
      } catch (err) {
        this.o.logger.warn({ class: ev.cls, ref: ev.ref, err: describeError(err) }, 'malformed event snapshot; ignored');
      }
    }
    if (!isEmptyChange(change)) this.emit('change', change);
  }

  /** What XAPI says of the network followed for `bridge`; returns whether it is still followed for it. */
  private applyNetworkRecord(bridge: string, ref: string, record: NetworkRecord | undefined, change: XapiChange): boolean {
    const followed = this.batcher.applyNetworkRecord(bridge, record, change);
    if (!followed) this.crowded.forget(ref);
    return followed;
  }
}

/** See `XapiWatcher.subscriptions`: about 1000 refs make a ~70 KiB XML-RPC event.from request. */
const MAX_OBJECT_SUBSCRIPTIONS = 1000;
