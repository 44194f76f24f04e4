import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { AbortedError, CodedError, describeError } from '../errors.js';
import { createFailureSummarizer, type FailureSummarizer } from '../log.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from '../retry.js';
import { emptyChange, isEmptyChange, LOOKUP, XapiCache, type ObjectTable, type XapiChange } from './cache.js';
import type { XapiStruct, XapiValue } from './codec/types.js';
import { XapiError } from './errors.js';
import {
  DEFAULT_LOOKUP_BATCH_SIZE,
  fetchThisHost,
  getPool,
  getPoolRef,
  isFilterableBridgeName,
  isUuid,
  lookupNetworksByBridge,
  lookupVifsByRef,
  lookupVifsByUuid,
  lookupVifsOfVms,
  lookupVmsByRef,
  lookupVmsByUuid,
  lookupVmsScheduledOn,
  readNetworkFields,
  type LookupOptions,
} from './lookups.js';
import { HostPlacementTracker } from './placement.js';
import {
  expectString,
  parseHost,
  parseHostPlacement,
  parseNetwork,
  parsePool,
  parseVif,
  parseVm,
  parseVmVifRefs,
  refCount,
  type HostPlacement,
  type NetworkRecord,
  type VifRecord,
  type VmRecord,
} from './records.js';
import type { XapiCaller } from './session.js';

/** Networks are never kept without a bridge referring to them. */
const notHeld = (): boolean => false;

/** How long a re-subscription waits (see `resubscribeIfGrown`). */
const RESUBSCRIBE_DELAY_MS = 10;

export interface XapiInterest {
  readonly vifs: Iterable<string>;
  readonly vms: Iterable<string>;
  /** Bridge names: each is looked up as the network whose `bridge` field it is. */
  readonly bridges: Iterable<string>;
}

export interface XapiInterestDelta {
  readonly addVifs: Iterable<string>;
  readonly removeVifs: Iterable<string>;
  readonly addVms: Iterable<string>;
  readonly removeVms: Iterable<string>;
  /** Omitted: no change to the bridge names followed. */
  readonly addBridges?: Iterable<string>;
  readonly removeBridges?: Iterable<string>;
}

/** `syncing`: (re)fetching; `live`: following events; `down`: XAPI unreachable, retrying. */
export type XapiWatcherPhase = 'idle' | 'syncing' | 'live' | 'down';

export interface XapiWatcherEvents {
  change: [XapiChange];
  phase: [XapiWatcherPhase];
}

export interface XapiWatcherOptions {
  readonly caller: XapiCaller;
  readonly logger: Logger;
  /** event.from server-side timeout (reference §5.1; 30–60 s). Default 30. */
  readonly eventTimeoutSec?: number;
  readonly lookupBatchSize?: number;
  /** Interest changes within this window are looked up as one batch per class. Default 0: the next turn. */
  readonly coalesceMs?: number;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
  /**
   * A network whose event snapshot lists more VIFs than this (default 1024) is crowded: its `VIFs` set
   * is pool-wide, so every VIF plugged or unplugged anywhere on it would send this host the whole list
   * again. A crowded network is not subscribed to; its fields are re-read every `networkRefreshMs`.
   */
  readonly crowdedNetworkVifs?: number;
  /** Default 10 s. */
  readonly networkRefreshMs?: number;
}

/** Records fetched ahead of their ports (see `HostPlacementTracker`). */
interface Anticipated {
  readonly vms: readonly VmRecord[];
  readonly vifs: readonly VifRecord[];
  /** The refs of the VMs scheduled on this host, when that was asked. */
  readonly scheduled: readonly string[] | undefined;
}

const NOTHING_ANTICIPATED: Anticipated = { vms: [], vifs: [], scheduled: undefined };

interface EventRecord {
  readonly cls: string;
  readonly operation: string;
  readonly ref: string;
  readonly snapshot: XapiValue | undefined;
}

/**
 * Follows XAPI for the objects this host's ports and bridges depend on (reference/xapi.md §5, §10.3):
 * token from `event.inject("pool", poolRef)` first, then the initial fetch, then `event.from`
 * long-polls subscribed to `pool`, this host, and `vif/<ref>` / `vm/<ref>` / `network/<ref>` for each
 * object of interest, so cost follows this host's objects, not the pool's. Exactly one long-poll is
 * in flight when idle. New UUIDs and bridge names are looked up in coalesced batches; interest growth
 * re-issues the long-poll with the same token.
 *
 * The VMs placed on this host (`HostPlacementTracker`) and their VIFs are followed too, whether or
 * not a row refers to them yet, so the port of a starting, arriving or rebooting VM, or of a VIF
 * hot-plugged into a running one, finds its records already known: no XAPI round trip on its path.
 */
export class XapiWatcher extends EventEmitter<XapiWatcherEvents> {
  readonly cache = new XapiCache();
  private readonly o: XapiWatcherOptions;
  private interestVifs = new Set<string>();
  private interestVms = new Set<string>();
  private interestBridges = new Set<string>();
  private queuedVifs = new Set<string>();
  private queuedVms = new Set<string>();
  private queuedBridges = new Set<string>();
  /** VMs placed here but not known: fetched with their VIFs. */
  private queuedVmRefs = new Set<string>();
  /** VIFs of placed VMs, not known (hot-plugged). */
  private queuedVifRefs = new Set<string>();
  /** Placing operations changed: ask which VMs are scheduled here. */
  private askScheduled = false;
  /** Cleared when XAPI rejects the question (it reads a field internal to XAPI). */
  private scheduledQuerySupported = true;
  /** A lookup by uuid or bridge name is in flight (fetches ahead of need are not counted). */
  private keyLookupsInFlight = false;
  private readonly placement = new HostPlacementTracker();
  /** Refs of crowded networks (see `XapiWatcherOptions.crowdedNetworkVifs`). */
  private readonly crowdedNetworks = new Set<string>();
  private networkRefreshTimer: NodeJS.Timeout | undefined;
  /** The previous event.from answer could not be decoded (see `pollOnce`). */
  private lastPollMalformed = false;
  /** Cancels the scheduled lookup batch, if one is scheduled. */
  private cancelLookup: (() => void) | undefined;
  private resubscribeTimer: NodeJS.Timeout | undefined;
  /** Set by `rewindTo`: the token the next poll must start from. */
  private rewoundToken: string | undefined;
  private lookupRunning: Promise<void> | undefined;
  private stopController: AbortController | undefined;
  private pollController: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private resyncRequested = false;
  private token = '';
  private hostRef: string | undefined;
  private syncedGeneration = -1;
  private currentPhase: XapiWatcherPhase = 'idle';
  private subscribed = new Set<string>();
  /** `valid_ref_counts.network` of the last event.from answer since the last sync (see `noteNetworkCount`). */
  private networkCount: number | undefined;
  /** Bridge names whose lookup in flight may predate a network's creation: asked again if it answers absent. */
  private staleBridges = new Set<string>();
  /** One warn line per outage, periodic summaries of the retries, one line when XAPI is back. */
  private readonly outage: FailureSummarizer;

  constructor(options: XapiWatcherOptions) {
    super();
    this.o = options;
    this.outage = createFailureSummarizer(options.logger);
  }

  get phase(): XapiWatcherPhase {
    return this.currentPhase;
  }

  /**
   * Lookups are queued, scheduled or in flight. Each ends in a `change` for every uuid or bridge name
   * it asked about (known, absent, or unknown when XAPI fails), so a consumer that waits for this to
   * clear is told when the answers are in.
   */
  get lookupsOutstanding(): boolean {
    return this.keyLookupsQueued || this.keyLookupsInFlight;
  }

  private get keyLookupsQueued(): boolean {
    return this.queuedVifs.size > 0 || this.queuedVms.size > 0 || this.queuedBridges.size > 0;
  }

  private get lookupsQueued(): boolean {
    return this.keyLookupsQueued || this.queuedVmRefs.size > 0 || this.queuedVifRefs.size > 0 || this.askScheduled;
  }

  start(signal?: AbortSignal): void {
    if (this.loop !== undefined) return;
    const controller = new AbortController();
    this.stopController = controller;
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    this.loop = this.run(controller.signal).catch((err: unknown) => {
      // run() handles its own failures; this guards against a bug turning into an unhandled rejection.
      this.o.logger.error({ err: describeError(err) }, 'XAPI watcher loop ended unexpectedly');
    });
  }

  async stop(): Promise<void> {
    const controller = this.stopController;
    if (controller === undefined) return;
    controller.abort(new AbortedError('XAPI watcher stopped'));
    this.cancelLookup?.();
    this.cancelLookup = undefined;
    clearTimeout(this.resubscribeTimer);
    this.resubscribeTimer = undefined;
    clearTimeout(this.networkRefreshTimer);
    this.networkRefreshTimer = undefined;
    await this.loop;
    await this.lookupRunning;
    this.loop = undefined;
    this.stopController = undefined;
    this.setPhase('idle');
  }

  /**
   * The VIF and VM UUIDs and the bridge names the database refers to now. Cheap and idempotent: new
   * ones become `pending` and are looked up in a coalesced batch; dropped ones are forgotten.
   */
  setInterest(interest: XapiInterest): void {
    const vifs = new Set(interest.vifs);
    const vms = new Set(interest.vms);
    const bridges = new Set(interest.bridges);
    const change = emptyChange();
    this.updateInterest(this.interestVifs, vifs, this.queuedVifs, this.cache.vifs, change.vifs, this.vifHeld);
    this.updateInterest(this.interestVms, vms, this.queuedVms, this.cache.vms, change.vms, this.vmHeld);
    this.updateInterest(this.interestBridges, bridges, this.queuedBridges, this.cache.networks, change.networks, notHeld);
    this.interestVifs = vifs;
    this.interestVms = vms;
    this.interestBridges = bridges;
    this.emitChange(change);
    if (this.lookupsQueued) this.scheduleLookup();
  }

  /**
   * The incremental form of `setInterest`, O(changed keys): start following `addVifs`/`addVms`/
   * `addBridges`, forget `removeVifs`/`removeVms`/`removeBridges`. Adding a key already followed, or
   * removing one not followed, is a no-op.
   */
  changeInterest(delta: XapiInterestDelta): void {
    const change = emptyChange();
    this.applyInterestDelta(this.interestVifs, delta.addVifs, delta.removeVifs, this.queuedVifs, this.cache.vifs, change.vifs, this.vifHeld);
    this.applyInterestDelta(this.interestVms, delta.addVms, delta.removeVms, this.queuedVms, this.cache.vms, change.vms, this.vmHeld);
    this.applyInterestDelta(this.interestBridges, delta.addBridges ?? [], delta.removeBridges ?? [], this.queuedBridges, this.cache.networks, change.networks, notHeld);
    this.emitChange(change);
    if (this.lookupsQueued) this.scheduleLookup();
  }

  /** Drops every VIF/VM/network lookup (back to `pending`) and refetches everything (`flush-cache`). */
  flushCache(): void {
    const change = emptyChange();
    for (const uuid of this.interestVifs) this.cache.vifs.set(uuid, isUuid(uuid) ? LOOKUP.pending : LOOKUP.absent, change.vifs);
    for (const uuid of this.interestVms) this.cache.vms.set(uuid, isUuid(uuid) ? LOOKUP.pending : LOOKUP.absent, change.vms);
    for (const bridge of this.interestBridges) this.cache.networks.set(bridge, isFilterableBridgeName(bridge) ? LOOKUP.pending : LOOKUP.absent, change.networks);
    this.emitChange(change);
    this.requestResync();
  }

  /** Refetches everything of interest without dropping what is known (periodic safety net). */
  requestResync(): void {
    this.resyncRequested = true;
    this.pollController?.abort(new AbortedError('resync'));
  }

  private updateInterest(
    old: ReadonlySet<string>,
    next: ReadonlySet<string>,
    queue: Set<string>,
    table: LookupTable,
    changed: Set<string>,
    held: (uuid: string) => boolean,
  ): void {
    for (const uuid of old) {
      if (next.has(uuid)) continue;
      if (!held(uuid)) table.delete(uuid);
      queue.delete(uuid);
    }
    for (const uuid of next) {
      if (!old.has(uuid)) this.admit(uuid, queue, table, changed);
    }
  }

  private applyInterestDelta(
    interest: Set<string>,
    add: Iterable<string>,
    remove: Iterable<string>,
    queue: Set<string>,
    table: LookupTable,
    changed: Set<string>,
    held: (uuid: string) => boolean,
  ): void {
    for (const uuid of remove) {
      if (!interest.delete(uuid)) continue;
      if (!held(uuid)) table.delete(uuid);
      queue.delete(uuid);
    }
    for (const uuid of add) {
      if (interest.has(uuid)) continue;
      interest.add(uuid);
      this.admit(uuid, queue, table, changed);
    }
  }

  /** A live record kept for a VM placed here: no row needs it now, but its port may come (back). */
  private readonly vifHeld = (uuid: string): boolean => {
    const e = this.cache.vifs.get(uuid);
    return e.state === 'known' && !e.deleted && this.placement.holds(e.record.VM);
  };

  private readonly vmHeld = (uuid: string): boolean => {
    const e = this.cache.vms.get(uuid);
    return e.state === 'known' && !e.deleted && this.placement.holds(e.record.ref);
  };

  /**
   * A newly followed key: pending and queued for the next batch (unknown while XAPI is down), unless
   * its record is already known and followed by events (a placed VM's, fetched ahead of its port).
   */
  private admit(uuid: string, queue: Set<string>, table: LookupTable, changed: Set<string>): void {
    const known = table.get(uuid);
    if (known.state === 'known' && !known.deleted) return;
    if (!table.askable(uuid)) {
      // Not a UUID (or a bridge name a filter cannot carry): the filter language has no escapes.
      table.set(uuid, LOOKUP.absent, changed);
      return;
    }
    table.set(uuid, this.currentPhase === 'down' ? LOOKUP.unknown : LOOKUP.pending, changed);
    if (this.currentPhase !== 'down') queue.add(uuid);
  }

  private scheduleLookup(): void {
    if (this.cancelLookup !== undefined || this.stopController === undefined) return;
    let cancelled = false;
    const run = (): void => {
      if (cancelled) return;
      this.cancelLookup = undefined;
      if (this.currentPhase !== 'live' || this.lookupRunning !== undefined) return;
      this.lookupRunning = this.runLookups().finally(() => {
        this.lookupRunning = undefined;
        if (this.lookupsQueued) this.scheduleLookup();
      });
    };
    // Interest changes of one OVSDB update arrive in one synchronous turn, so a microtask already
    // batches them, and the lookups are on the wire before the reconcile pass of that update runs (the
    // pass, which can only mark the rows pending, would otherwise delay each new port by its length).
    // A positive coalesceMs waits longer to batch across updates.
    const coalesceMs = this.o.coalesceMs ?? 0;
    if (coalesceMs > 0) {
      const timer = setTimeout(run, coalesceMs);
      this.cancelLookup = () => {
        clearTimeout(timer);
      };
    } else {
      queueMicrotask(run);
      this.cancelLookup = () => {
        cancelled = true;
      };
    }
  }

  private async runLookups(): Promise<void> {
    const signal = this.stopController?.signal;
    const tokenBefore = this.token;
    const generationBefore = this.syncedGeneration;
    const vifs = this.queuedVifs;
    const vms = this.queuedVms;
    const bridges = this.queuedBridges;
    const vmRefs = this.queuedVmRefs;
    const vifRefs = this.queuedVifRefs;
    const askScheduled = this.askScheduled;
    this.queuedVifs = new Set();
    this.queuedVms = new Set();
    this.queuedBridges = new Set();
    this.queuedVmRefs = new Set();
    this.queuedVifRefs = new Set();
    this.askScheduled = false;
    this.keyLookupsInFlight = vifs.size > 0 || vms.size > 0 || bridges.size > 0;
    const options = { batchSize: this.o.lookupBatchSize ?? DEFAULT_LOOKUP_BATCH_SIZE, signal, retries: 1 };
    try {
      const [vifRecords, vmRecords, networkRecords, anticipated] = await Promise.all([
        vifs.size > 0 ? lookupVifsByUuid(this.o.caller, vifs, options) : new Map<string, VifRecord>(),
        vms.size > 0 ? lookupVmsByUuid(this.o.caller, vms, options) : new Map<string, VmRecord>(),
        bridges.size > 0 ? lookupNetworksByBridge(this.o.caller, bridges, options) : new Map<string, NetworkRecord>(),
        this.anticipate(vmRefs, vifRefs, askScheduled, options),
      ]);
      const change = emptyChange();
      this.applyLookups(vifs, vifRecords, this.interestVifs, this.cache.vifs, change.vifs);
      this.applyLookups(vms, vmRecords, this.interestVms, this.cache.vms, change.vms);
      this.applyNetworkLookups(bridges, networkRecords, change);
      this.applyAnticipated(anticipated, change);
      this.emitChange(change);
      const fetched = vifRecords.size + vmRecords.size + networkRecords.size + anticipated.vifs.length + anticipated.vms.length;
      if (this.syncedGeneration === generationBefore && fetched > 0) this.rewindTo(tokenBefore);
      this.resubscribeIfGrown();
    } catch (err) {
      if (signal?.aborted === true) return;
      this.o.logger.warn({ err: describeError(err) }, 'XAPI lookup failed; resynchronising');
      const change = emptyChange();
      for (const uuid of vifs) if (this.cache.vifs.get(uuid).state === 'pending') this.cache.vifs.set(uuid, LOOKUP.unknown, change.vifs);
      for (const uuid of vms) if (this.cache.vms.get(uuid).state === 'pending') this.cache.vms.set(uuid, LOOKUP.unknown, change.vms);
      for (const bridge of bridges) if (this.cache.networks.get(bridge).state === 'pending') this.cache.networks.set(bridge, LOOKUP.unknown, change.networks);
      this.emitChange(change);
      this.requestResync();
    } finally {
      this.keyLookupsInFlight = false;
    }
  }

  /**
   * Fetches what the placement tracker asked for: placed VMs not known yet with all their VIFs,
   * hot-plugged VIFs, and the VMs scheduled here. Only ever ahead of need: a failure is logged and the
   * ports concerned are looked up when they appear.
   */
  private async anticipate(vmRefs: ReadonlySet<string>, vifRefs: ReadonlySet<string>, askScheduled: boolean, options: LookupOptions): Promise<Anticipated> {
    const hostRef = this.hostRef;
    const ask = askScheduled && this.scheduledQuerySupported && hostRef !== undefined;
    if (vmRefs.size === 0 && vifRefs.size === 0 && !ask) return NOTHING_ANTICIPATED;
    const caller = this.o.caller;
    try {
      const [placed, scheduled] = await Promise.all([
        vmRefs.size > 0 ? lookupVmsByRef(caller, vmRefs, options) : [],
        ask ? this.scheduledVms(hostRef, options) : undefined,
      ]);
      const newlyScheduled = (scheduled ?? []).filter((vm) => !this.placement.holds(vm.ref));
      const vifLists = await Promise.all([
        lookupVifsOfVms(caller, [...placed, ...newlyScheduled].map((vm) => vm.ref), options),
        vifRefs.size > 0 ? lookupVifsByRef(caller, vifRefs, options) : [],
      ]);
      return { vms: [...placed, ...(scheduled ?? [])], vifs: vifLists.flat(), scheduled: scheduled?.map((vm) => vm.ref) };
    } catch (err) {
      if (options.signal?.aborted === true) throw err;
      this.o.logger.debug({ err: describeError(err) }, 'XAPI prefetch for VMs placed on this host failed; their ports are looked up when they appear');
      return NOTHING_ANTICIPATED;
    }
  }

  private async scheduledVms(hostRef: string, options: LookupOptions): Promise<VmRecord[] | undefined> {
    try {
      return await lookupVmsScheduledOn(this.o.caller, hostRef, options);
    } catch (err) {
      // A XAPI that refuses the filter on its internal column answers INVALID_VALUE; do not ask again.
      if (!(err instanceof XapiError && err.code === 'INVALID_VALUE')) throw err;
      this.scheduledQuerySupported = false;
      this.o.logger.info({ err: describeError(err) }, 'XAPI cannot tell which VMs are scheduled on this host; ports of starting VMs are looked up when they appear');
      return undefined;
    }
  }

  /** Known records for what is placed here (or asked about meanwhile); the rest is dropped. */
  private applyAnticipated(anticipated: Anticipated, change: XapiChange): void {
    if (anticipated.scheduled !== undefined) this.prune(this.placement.setScheduled(anticipated.scheduled));
    for (const vm of anticipated.vms) {
      if (!this.placement.holds(vm.ref) && !this.interestVms.has(vm.uuid)) continue;
      this.cache.vms.set(vm.uuid, { state: 'known', record: vm, deleted: false }, change.vms);
      this.queuedVms.delete(vm.uuid);
    }
    for (const vif of anticipated.vifs) {
      if (!this.placement.holds(vif.VM) && !this.interestVifs.has(vif.uuid)) continue;
      this.cache.vifs.set(vif.uuid, { state: 'known', record: vif, deleted: false }, change.vifs);
      this.queuedVifs.delete(vif.uuid);
    }
  }

  /** Takes in this host's record from an event: fetches what arrives, forgets what left. */
  private observePlacement(placement: HostPlacement): void {
    const update = this.placement.observe(placement);
    for (const ref of update.arrived) if (this.cache.vms.uuidOf(ref) === undefined) this.queuedVmRefs.add(ref);
    if (update.askScheduled) this.askScheduled = true;
    this.prune(update.departed);
    if (this.lookupsQueued) this.scheduleLookup();
  }

  /** A placed VM's VIFs not known yet: hot-plugged, their ports are about to appear. */
  private observeVmVifs(vifRefs: readonly string[]): void {
    for (const ref of vifRefs) if (this.cache.vifs.uuidOf(ref) === undefined) this.queuedVifRefs.add(ref);
    if (this.queuedVifRefs.size > 0) this.scheduleLookup();
  }

  /** Drops the records of VMs no longer placed here, and of their VIFs, unless a row refers to them. */
  private prune(vmRefs: readonly string[]): void {
    const gone = new Set(vmRefs.filter((ref) => !this.placement.holds(ref)));
    if (gone.size === 0) return;
    for (const ref of gone) {
      const uuid = this.cache.vms.uuidOf(ref);
      if (uuid !== undefined && !this.interestVms.has(uuid)) this.cache.vms.delete(uuid);
    }
    for (const uuid of [...this.cache.vifs.uuids()]) {
      const e = this.cache.vifs.get(uuid);
      if (e.state === 'known' && gone.has(e.record.VM) && !this.interestVifs.has(uuid)) this.cache.vifs.delete(uuid);
    }
  }

  /** After a resync only what rows refer to is known afresh: records kept for placement are dropped. */
  private dropUnreferenced(): void {
    for (const uuid of [...this.cache.vifs.uuids()]) if (!this.interestVifs.has(uuid)) this.cache.vifs.delete(uuid);
    for (const uuid of [...this.cache.vms.uuids()]) if (!this.interestVms.has(uuid)) this.cache.vms.delete(uuid);
  }

  /** Found → known; missing → absent, except that a previously known object keeps its record, marked deleted (DESIGN §2). */
  private applyLookups<R extends { readonly ref: string; readonly uuid: string }>(
    asked: Iterable<string>,
    found: ReadonlyMap<string, R>,
    interest: ReadonlySet<string>,
    t: ObjectTable<R>,
    changed: Set<string>,
  ): void {
    for (const uuid of asked) {
      if (!interest.has(uuid)) continue;
      const record = found.get(uuid) ?? found.get(uuid.toLowerCase());
      if (record !== undefined) {
        t.set(uuid, { state: 'known', record, deleted: false }, changed);
        continue;
      }
      const prev = t.get(uuid);
      if (prev.state === 'known') t.set(uuid, { state: 'known', record: prev.record, deleted: true }, changed);
      else t.set(uuid, LOOKUP.absent, changed);
    }
  }

  /**
   * Found → known; missing → absent, even if known before: a deleted network leaves no record behind.
   * Every name asked is reported changed, even when its answer is the same: a name asked again
   * (`requeueBridges`) was not pending, and `lookupsOutstanding` promises a change at the end.
   */
  private applyNetworkLookups(asked: Iterable<string>, found: ReadonlyMap<string, NetworkRecord>, change: XapiChange): void {
    for (const bridge of asked) {
      const stale = this.staleBridges.delete(bridge);
      if (!this.interestBridges.has(bridge)) continue;
      const record = found.get(bridge);
      this.cache.networks.set(bridge, record !== undefined ? { state: 'known', record, deleted: false } : LOOKUP.absent, change.networks);
      change.networks.add(bridge);
      if (record === undefined && stale) this.queuedBridges.add(bridge);
    }
  }

  /** Looks up again, without dropping their current state, the bridge names of interest that `which` selects. */
  private requeueBridges(which: (bridge: string) => boolean): void {
    for (const bridge of this.interestBridges) if (isFilterableBridgeName(bridge) && which(bridge)) this.queuedBridges.add(bridge);
    if (this.queuedBridges.size > 0) this.scheduleLookup();
  }

  /**
   * Per-object `vif/<ref>`, `vm/<ref>` and `network/<ref>` subscriptions keep event traffic proportional
   * to this host's objects; the list is resent with every `event.from`, though, and past ~4000 refs an
   * XML-RPC request exceeds XAPI's 300 KiB cap (XAPI_REQUEST_TOO_LARGE). Beyond
   * `MAX_OBJECT_SUBSCRIPTIONS` live objects the watcher subscribes to the whole `vif`, `vm` and
   * `network` classes instead; events for objects it does not follow are ignored (`applyObjectEventTo`,
   * `applyNetworkEvent`). Networks created later are noticed through `valid_ref_counts`, not events.
   */
  private subscriptions(): string[] {
    const base = ['pool', this.hostRef !== undefined ? `host/${this.hostRef}` : 'host'];
    const vifs = this.cache.vifs.liveRefs();
    const vms = this.cache.vms.liveRefs();
    // Networks are few and stay per-ref even past the cap: the class would carry every network's VIFs set.
    const networks = this.cache.networks
      .liveRefs()
      .filter((r) => !this.crowdedNetworks.has(r))
      .map((r) => `network/${r}`);
    if (vifs.length + vms.length + networks.length > MAX_OBJECT_SUBSCRIPTIONS) return [...base, ...networks, 'vif', 'vm'];
    return [...base, ...networks, ...vifs.map((r) => `vif/${r}`), ...vms.map((r) => `vm/${r}`)];
  }

  /**
   * Re-issues the long-poll when objects of interest are missing from its subscriptions. Deferred a
   * little, so the reconcile pass these lookups enable runs first and a burst of plugs costs one
   * re-issue; nothing is lost meanwhile, since the re-issued call starts from the same token.
   */
  private resubscribeIfGrown(): void {
    if (this.resubscribeTimer !== undefined) return;
    this.resubscribeTimer = setTimeout(() => {
      this.resubscribeTimer = undefined;
      if (this.pollController === undefined) return;
      for (const s of this.subscriptions()) {
        if (!this.subscribed.has(s)) {
          this.pollController.abort(new AbortedError('resubscribe'));
          return;
        }
      }
    }, RESUBSCRIBE_DELAY_MS);
  }

  private setPhase(phase: XapiWatcherPhase): void {
    if (phase === this.currentPhase) return;
    this.currentPhase = phase;
    this.o.logger.info({ phase }, 'XAPI watcher state');
    this.emit('phase', phase);
  }

  private emitChange(change: XapiChange): void {
    if (!isEmptyChange(change)) this.emit('change', change);
  }

  private async run(stop: AbortSignal): Promise<void> {
    let failures = 0;
    while (!stop.aborted) {
      try {
        this.setPhase('syncing');
        await this.sync(stop);
        failures = 0;
        this.setPhase('live');
        this.outage.recovered(OUTAGE_KEY, 'XAPI available again');
        if (this.lookupsQueued) this.scheduleLookup();
        while (!isAborted(stop) && !this.resyncRequested) await this.pollOnce(stop);
      } catch (err) {
        if (isAborted(stop)) break;
        if (err instanceof XapiError && err.code === 'EVENT_FROM_TOKEN_PARSE_FAILURE') {
          this.o.logger.info('XAPI rejected the event token; resynchronising');
          continue;
        }
        failures++;
        this.setPhase('down');
        this.markUnreachable();
        const delay = backoffDelay(failures, this.o.backoff ?? DEFAULT_BACKOFF, this.o.random);
        this.outage.failure(OUTAGE_KEY, 'XAPI unavailable', { err: describeError(err), retryInMs: delay });
        try {
          await sleep(delay, undefined, { signal: stop });
        } catch {
          break;
        }
      }
    }
  }

  /**
   * Pending lookups cannot resolve while XAPI is unreachable: they become `unknown` (DESIGN §2). Records
   * kept only for placement go: no event can keep them true now, and a port that appears meanwhile
   * must get the default ids of an unknown object, as any other new port does.
   */
  private markUnreachable(): void {
    this.dropUnreferenced();
    const change = emptyChange();
    for (const uuid of this.cache.vifs.uuids()) if (this.cache.vifs.get(uuid).state === 'pending') this.cache.vifs.set(uuid, LOOKUP.unknown, change.vifs);
    for (const uuid of this.cache.vms.uuids()) if (this.cache.vms.get(uuid).state === 'pending') this.cache.vms.set(uuid, LOOKUP.unknown, change.vms);
    for (const bridge of this.cache.networks.uuids()) if (this.cache.networks.get(bridge).state === 'pending') this.cache.networks.set(bridge, LOOKUP.unknown, change.networks);
    this.queuedVifs.clear();
    this.queuedVms.clear();
    this.queuedBridges.clear();
    this.staleBridges.clear();
    this.emitChange(change);
  }

  /** Token first, then the fetch (reference §5.2): nothing changed in between can be missed. */
  private async sync(signal: AbortSignal): Promise<void> {
    this.resyncRequested = false;
    this.rewoundToken = undefined;
    const caller = this.o.caller;
    const opts = { signal };
    const poolRef = await getPoolRef(caller, opts);
    this.token = poolRef !== undefined ? expectString(await caller.call('event.inject', ['pool', poolRef], opts), 'event.inject answer') : '';
    const generation = caller.generation;
    const { host, placement } = await fetchThisHost(caller, opts);
    const pool = await getPool(caller, opts);
    const vifUuids = [...this.interestVifs].filter(isUuid);
    const vmUuids = [...this.interestVms].filter(isUuid);
    const bridgeNames = [...this.interestBridges].filter(isFilterableBridgeName);
    for (const u of vifUuids) this.queuedVifs.delete(u);
    for (const u of vmUuids) this.queuedVms.delete(u);
    for (const b of bridgeNames) this.queuedBridges.delete(b);
    const batch = { ...opts, batchSize: this.o.lookupBatchSize ?? DEFAULT_LOOKUP_BATCH_SIZE };
    const [vifs, vms, networks] = await Promise.all([
      lookupVifsByUuid(caller, vifUuids, batch),
      lookupVmsByUuid(caller, vmUuids, batch),
      lookupNetworksByBridge(caller, bridgeNames, batch),
    ]);

    const change = emptyChange();
    this.hostRef = host.ref;
    this.placement.reset(placement);
    this.queuedVmRefs.clear();
    this.queuedVifRefs.clear();
    this.askScheduled = false;
    this.dropUnreferenced();
    this.cache.setHost(host, change);
    this.cache.setPool(pool, change);
    this.applyLookups(vifUuids, vifs, this.interestVifs, this.cache.vifs, change.vifs);
    this.applyLookups(vmUuids, vms, this.interestVms, this.cache.vms, change.vms);
    this.applyNetworkLookups(bridgeNames, networks, change);
    this.networkCount = undefined;
    this.syncedGeneration = generation;
    this.o.logger.debug({ vifs: vifs.size, vms: vms.size, networks: networks.size }, 'XAPI snapshot fetched');
    this.emitChange(change);
  }

  /**
   * Newly followed objects were fetched at some point after `token`; a change made to one of them
   * after that fetch but before the long-poll subscribes to it would be covered by the token the
   * running poll returns, and so lost. The next poll therefore starts from `token` again (events on
   * objects already followed come twice; applying a snapshot twice is harmless), and a batch from a
   * poll issued before now may not move the token past it.
   */
  private rewindTo(token: string): void {
    if (this.rewoundToken !== undefined) return;
    this.rewoundToken = token;
    this.token = token;
  }

  private async pollOnce(stop: AbortSignal): Promise<void> {
    const controller = new AbortController();
    const onStop = (): void => {
      controller.abort(new AbortedError('XAPI watcher stopped'));
    };
    stop.addEventListener('abort', onStop, { once: true });
    this.pollController = controller;
    const subs = this.subscriptions();
    this.subscribed = new Set(subs);
    // This poll covers every followed object from the (possibly rewound) token: it may advance it.
    this.rewoundToken = undefined;
    const timeoutSec = this.o.eventTimeoutSec ?? 30;
    let result: XapiValue;
    try {
      // A non-integral float: XML-RPC hosts before 7.3 reject an int timeout (reference §5.1, XO's 60.1).
      result = await this.o.caller.call('event.from', [subs, this.token, timeoutSec + 0.1], {
        signal: controller.signal,
        timeoutMs: (timeoutSec + 30) * 1000,
        retries: 0,
      });
    } catch (err) {
      // Aborted to re-subscribe or resync: the loop re-issues (same token) or resyncs.
      if (controller.signal.aborted && !stop.aborted && err instanceof CodedError && err.code === 'ABORTED') return;
      // An answer that did not decode: asking again from the same token loses nothing and costs one
      // call, where a resync re-reads every object of interest. A second one in a row resyncs.
      if (err instanceof CodedError && err.code === 'XAPI_PROTOCOL' && !this.lastPollMalformed && !stop.aborted) {
        this.lastPollMalformed = true;
        this.o.logger.warn({ err: describeError(err) }, 'undecodable event.from answer; asking again from the same token');
        return;
      }
      throw err;
    } finally {
      stop.removeEventListener('abort', onStop);
      this.pollController = undefined;
    }
    this.lastPollMalformed = false;
    if (this.o.caller.generation !== this.syncedGeneration) {
      // A re-login happened: XAPI may have restarted, so the snapshot is suspect (reference §5.2 step 5).
      this.resyncRequested = true;
      return;
    }
    this.applyBatch(result);
  }

  private applyBatch(result: XapiValue): void {
    const batch = asStruct(result);
    const token = batch?.token;
    const events = batch?.events;
    if (typeof token !== 'string' || !Array.isArray(events)) {
      this.o.logger.warn('malformed event.from answer; resynchronising');
      this.resyncRequested = true;
      return;
    }
    if (this.rewoundToken === undefined) this.token = token;
    this.noteNetworkCount(asStruct(batch?.valid_ref_counts)?.network);
    const change = emptyChange();
    for (const raw of events as readonly XapiValue[]) {
      const ev = parseEvent(raw);
      if (ev === undefined) {
        this.o.logger.warn('malformed event in event.from answer; ignored');
        continue;
      }
      try {
        this.applyEvent(ev, change);
      } catch (err) {
        this.o.logger.warn({ cls: ev.cls, err: describeError(err) }, 'malformed event snapshot; ignored');
      }
    }
    this.emitChange(change);
  }

  /**
   * Networks are followed per ref, so the creation of a network for a bridge name whose lookup said
   * absent raises no event. `valid_ref_counts` counts every table's rows, subscribed or not
   * (reference §5.1): when the network count moves, the names whose lookup said absent are looked up
   * again, and so are those whose lookup is in flight if it answers absent, since it may have run
   * before the creation. The first answer after a sync has nothing to compare with, and the sync's
   * lookup may predate a creation, so it counts as a move. A creation and a deletion between two
   * answers cancel out; the periodic resync catches that.
   */
  private noteNetworkCount(count: XapiValue | undefined): void {
    const n = typeof count === 'number' ? count : typeof count === 'string' ? Number(count) : Number.NaN;
    if (!Number.isSafeInteger(n) || n === this.networkCount) return;
    this.networkCount = n;
    for (const bridge of this.interestBridges) {
      if (this.cache.networks.get(bridge).state === 'pending' && !this.queuedBridges.has(bridge)) this.staleBridges.add(bridge);
    }
    this.requeueBridges((bridge) => this.cache.networks.get(bridge).state === 'absent');
  }

  private applyEvent(ev: EventRecord, change: XapiChange): void {
    const del = ev.operation === 'del';
    if (!del && ev.snapshot === undefined) return;
    switch (ev.cls) {
      case 'vif':
        applyObjectEventTo(this.cache.vifs, ev, parseVif, change.vifs);
        return;
      case 'vm':
        applyObjectEventTo(this.cache.vms, ev, parseVm, change.vms);
        if (!del && this.placement.holds(ev.ref)) this.observeVmVifs(parseVmVifRefs(ev.ref, ev.snapshot ?? null));
        return;
      case 'network':
        this.applyNetworkEvent(ev, change);
        return;
      case 'pool':
        if (!del) this.cache.setPool(parsePool(ev.ref, ev.snapshot ?? null), change);
        return;
      case 'host':
        if (del || ev.ref !== this.hostRef) return;
        this.cache.setHost(parseHost(ev.ref, ev.snapshot ?? null), change);
        this.observePlacement(parseHostPlacement(ev.ref, ev.snapshot ?? null));
        return;
      default:
        return;
    }
  }

  /** Stops following a crowded network by events (the next poll leaves it out); re-reads it instead. */
  private markCrowded(ref: string, bridge: string, vifs: number): void {
    if (this.crowdedNetworks.has(ref)) return;
    this.crowdedNetworks.add(ref);
    const refreshSec = (this.o.networkRefreshMs ?? DEFAULT_NETWORK_REFRESH_MS) / 1000;
    this.o.logger.info({ bridge, vifs, refreshSec }, 'network lists VIFs of the whole pool: re-read periodically instead of followed by events');
    this.scheduleNetworkRefresh();
  }

  private scheduleNetworkRefresh(): void {
    if (this.networkRefreshTimer !== undefined || this.crowdedNetworks.size === 0 || this.stopController?.signal.aborted !== false) return;
    this.networkRefreshTimer = setTimeout(() => {
      void this.refreshCrowdedNetworks().finally(() => {
        this.networkRefreshTimer = undefined;
        this.scheduleNetworkRefresh();
      });
    }, this.o.networkRefreshMs ?? DEFAULT_NETWORK_REFRESH_MS);
  }

  /** Re-reads each crowded network's fields; one XAPI says is gone becomes absent. */
  private async refreshCrowdedNetworks(): Promise<void> {
    if (this.currentPhase !== 'live') return;
    const signal = this.stopController?.signal;
    const networks = this.cache.networks;
    const change = emptyChange();
    await Promise.all(
      [...this.crowdedNetworks].map(async (ref) => {
        const bridge = networks.uuidOf(ref);
        if (bridge === undefined) {
          this.crowdedNetworks.delete(ref);
          return;
        }
        try {
          const record = await readNetworkFields(this.o.caller, ref, { signal, retries: 0 });
          const current = networks.get(bridge);
          if (current.state === 'known' && current.record.ref === ref) this.applyNetworkRecord(bridge, ref, record, change);
        } catch (err) {
          // The event loop notices an unreachable XAPI and resynchronises; the next refresh tries again.
          if (signal?.aborted !== true) this.o.logger.debug({ bridge, err: describeError(err) }, 'network refresh failed');
        }
      }),
    );
    this.emitChange(change);
  }

  /** A followed network's event: its snapshot, or its deletion. */
  private applyNetworkEvent(ev: EventRecord, change: XapiChange): void {
    const bridge = this.cache.networks.uuidOf(ev.ref);
    if (bridge === undefined) return;
    const record = ev.operation === 'del' ? undefined : parseNetwork(ev.ref, ev.snapshot ?? null);
    this.applyNetworkRecord(bridge, ev.ref, record, change);
    const vifs = refCount(ev.snapshot, 'VIFs');
    if (record?.bridge === bridge && vifs > (this.o.crowdedNetworkVifs ?? DEFAULT_CROWDED_NETWORK_VIFS)) this.markCrowded(ev.ref, bridge, vifs);
  }

  /**
   * What XAPI now says of the network followed for `bridge` (by event or by refresh): its record, or
   * `undefined` once it is gone, which makes the bridge `absent` (no tombstone, unlike VIFs and VMs).
   */
  private applyNetworkRecord(bridge: string, ref: string, record: NetworkRecord | undefined, change: XapiChange): void {
    if (record?.bridge === bridge) {
      this.cache.networks.set(bridge, { state: 'known', record, deleted: false }, change.networks);
      return;
    }
    this.crowdedNetworks.delete(ref);
    this.cache.networks.set(bridge, LOOKUP.absent, change.networks);
    // `bridge` is read-only in XAPI (reference §6), so another name is not expected: both are asked again.
    if (record !== undefined) this.requeueBridges((b) => b === bridge || b === record.bridge);
  }
}

const DEFAULT_CROWDED_NETWORK_VIFS = 1024;
const DEFAULT_NETWORK_REFRESH_MS = 10_000;

/** A per-key lookup table of the cache (the watcher treats them alike). */
type LookupTable = ObjectTable<VifRecord> | ObjectTable<VmRecord> | ObjectTable<NetworkRecord>;

/** Per DESIGN §2 a deleted object keeps its last record (marked deleted) while still of interest. */
function applyObjectEventTo<R extends { readonly ref: string; readonly uuid: string }>(
  table: ObjectTable<R>,
  ev: EventRecord,
  parse: (ref: string, v: XapiValue) => R,
  changed: Set<string>,
): void {
  const uuid = table.uuidOf(ev.ref);
  if (uuid === undefined) return;
  if (ev.operation === 'del') {
    const prev = table.get(uuid);
    if (prev.state === 'known') table.set(uuid, { state: 'known', record: prev.record, deleted: true }, changed);
    return;
  }
  table.set(uuid, { state: 'known', record: parse(ev.ref, ev.snapshot ?? null), deleted: false }, changed);
}

/** See `XapiWatcher.subscriptions`: about 1000 refs make a ~70 KiB XML-RPC event.from request. */
const MAX_OBJECT_SUBSCRIPTIONS = 1000;

/** The summarizer key of "XAPI cannot be reached"; the latest error rides along in each line. */
const OUTAGE_KEY = 'xapi-unavailable';

/** Reads the flag afresh (TypeScript narrows a property read across awaits). */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

function asStruct(v: XapiValue | undefined): XapiStruct | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as XapiStruct) : undefined;
}

/** `{id, timestamp, class, operation, ref, snapshot?}`; `class` is lowercase (reference §5.1). */
function parseEvent(raw: XapiValue): EventRecord | undefined {
  const s = asStruct(raw);
  if (s === undefined) return undefined;
  const cls = s.class;
  const operation = s.operation;
  const ref = s.ref;
  if (typeof cls !== 'string' || typeof operation !== 'string' || typeof ref !== 'string') return undefined;
  return { cls: cls.toLowerCase(), operation, ref, snapshot: Object.hasOwn(s, 'snapshot') ? s.snapshot : undefined };
}
