import { describeError, type CodedError } from '../errors.js';
import { emptyChange, LOOKUP, type ObjectTable, type XapiChange } from './cache.js';
import type { Anticipation } from './anticipation.js';
import { DEFAULT_LOOKUP_BATCH_SIZE, isFilterableBridgeName, isUuid, lookupNetworksByBridge, lookupVifsByUuid, lookupVmsByUuid, type LookupOptions } from './lookups.js';
import type { NetworkRecord, VifRecord, VmRecord } from './records.js';
import type { WatcherPartOptions } from './watcher-part.js';
import type { StreamMark } from './follower.js';

export interface XapiInterestDelta {
  readonly addVifs: Iterable<string>;
  readonly removeVifs: Iterable<string>;
  readonly addVms: Iterable<string>;
  readonly removeVms: Iterable<string>;
  /** Omitted: no change to the bridge names followed. */
  readonly addBridges?: Iterable<string>;
  readonly removeBridges?: Iterable<string>;
}

/** What the batcher needs of the event follower: the one coupling between the two. */
export interface StreamControl {
  readonly live: () => boolean;
  readonly down: () => boolean;
  mark(): StreamMark;
  rewindTo(mark: StreamMark): void;
  interestGrew(): void;
  requestResync(): void;
}

export interface LookupBatcherOptions extends WatcherPartOptions {
  readonly stream: StreamControl;
  readonly anticipation: () => Anticipation;
  readonly emitChange: (change: XapiChange) => void;
  readonly lookupBatchSize?: number | undefined;
  /** Interest changes within this window are looked up as one batch per class. Default 0: the next turn. */
  readonly coalesceMs?: number | undefined;
}

type Class = 'vifs' | 'vms' | 'bridges';
type LookupTable = ObjectTable<VifRecord> | ObjectTable<VmRecord> | ObjectTable<NetworkRecord>;

/**
 * The VIF and VM uuids and bridge names rows refer to, and their lookups: new keys become `pending`
 * and are looked up in coalesced batches per class; every key asked ends in a `change` (known, absent,
 * or unknown when XAPI fails or its answer about that key cannot be decoded).
 */
export class LookupBatcher {
  private readonly o: LookupBatcherOptions;
  readonly interest = { vifs: new Set<string>(), vms: new Set<string>(), bridges: new Set<string>() };
  private queued = { vifs: new Set<string>(), vms: new Set<string>(), bridges: new Set<string>() };
  /** Bridge names whose lookup in flight may predate a network's creation: asked again if it answers absent. */
  private readonly staleBridges = new Set<string>();
  private keyLookupsInFlight = false;
  private cancelScheduled: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private stopController: AbortController | undefined;

  constructor(options: LookupBatcherOptions) {
    this.o = options;
  }

  /** Lookups by key are queued, scheduled or in flight (fetches ahead of need are not counted). */
  get outstanding(): boolean {
    return this.keyLookupsQueued || this.keyLookupsInFlight;
  }

  private get keyLookupsQueued(): boolean {
    return this.queued.vifs.size > 0 || this.queued.vms.size > 0 || this.queued.bridges.size > 0;
  }

  start(): void {
    this.stopController = new AbortController();
  }

  async stop(): Promise<void> {
    this.stopController?.abort();
    this.stopController = undefined;
    this.cancelScheduled?.();
    this.cancelScheduled = undefined;
    await this.running;
  }

  changeInterest(delta: XapiInterestDelta): void {
    const change = emptyChange();
    const { cache } = this.o;
    const anticipation = this.o.anticipation();
    this.applyDelta('vifs', delta.addVifs, delta.removeVifs, cache.vifs, change.vifs, anticipation.vifHeld);
    this.applyDelta('vms', delta.addVms, delta.removeVms, cache.vms, change.vms, anticipation.vmHeld);
    this.applyDelta('bridges', delta.addBridges ?? [], delta.removeBridges ?? [], cache.networks, change.networks, () => false);
    this.o.emitChange(change);
    this.schedule();
  }

  /** Every key of interest back to `pending` (or `absent` when it cannot be asked); a resync follows. */
  flush(): void {
    const change = emptyChange();
    const { vifs, vms, networks } = this.o.cache;
    for (const uuid of this.interest.vifs) vifs.set(uuid, isUuid(uuid) ? LOOKUP.pending : LOOKUP.absent, change.vifs);
    for (const uuid of this.interest.vms) vms.set(uuid, isUuid(uuid) ? LOOKUP.pending : LOOKUP.absent, change.vms);
    for (const bridge of this.interest.bridges) networks.set(bridge, isFilterableBridgeName(bridge) ? LOOKUP.pending : LOOKUP.absent, change.networks);
    this.o.emitChange(change);
  }

  /** Runs the queued lookups on the next turn (or after `coalesceMs`), if the stream is live. */
  schedule(): void {
    if (!this.keyLookupsQueued && !this.o.anticipation().queued) return;
    if (this.cancelScheduled !== undefined || this.stopController === undefined) return;
    let cancelled = false;
    const run = (): void => {
      if (cancelled) return;
      this.cancelScheduled = undefined;
      if (!this.o.stream.live() || this.running !== undefined) return;
      this.running = this.runLookups().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    };
    // Interest changes of one OVSDB update arrive in one synchronous turn, so a microtask already
    // batches them, and the lookups are on the wire before the reconcile pass of that update runs.
    // A positive coalesceMs waits longer to batch across updates.
    const coalesceMs = this.o.coalesceMs ?? 0;
    if (coalesceMs > 0) {
      const timer = this.o.clock.setTimeout(run, coalesceMs);
      this.cancelScheduled = () => {
        this.o.clock.clearTimeout(timer);
      };
    } else {
      queueMicrotask(run);
      this.cancelScheduled = () => {
        cancelled = true;
      };
    }
  }

  /**
   * A sync's fetch of every key of interest (queued ones included), applied into `change`. A key whose
   * answer cannot be decoded becomes unknown; any other failure throws.
   */
  async refetchAll(signal: AbortSignal, change: XapiChange): Promise<void> {
    const asked = {
      vifs: [...this.interest.vifs].filter(isUuid),
      vms: [...this.interest.vms].filter(isUuid),
      bridges: [...this.interest.bridges].filter(isFilterableBridgeName),
    };
    for (const cls of ['vifs', 'vms', 'bridges'] as const) for (const key of asked[cls]) this.queued[cls].delete(key);
    const found = await this.lookup(asked, { signal });
    this.apply(asked, found, change);
    this.o.logger.debug({ vifs: found.vifs.size, vms: found.vms.size, networks: found.bridges.size }, 'XAPI snapshot fetched');
  }

  /** XAPI cannot be reached: pending lookups become unknown (docs/design.md §3); queues are dropped. */
  unreachable(): void {
    const change = emptyChange();
    const { vifs, vms, networks } = this.o.cache;
    for (const uuid of vifs.keys()) if (vifs.get(uuid).state === 'pending') vifs.set(uuid, LOOKUP.unknown, change.vifs);
    for (const uuid of vms.keys()) if (vms.get(uuid).state === 'pending') vms.set(uuid, LOOKUP.unknown, change.vms);
    for (const bridge of networks.keys()) if (networks.get(bridge).state === 'pending') networks.set(bridge, LOOKUP.unknown, change.networks);
    this.queued = { vifs: new Set(), vms: new Set(), bridges: new Set() };
    this.staleBridges.clear();
    this.o.emitChange(change);
  }

  /**
   * Networks are followed per ref, so the creation of a network for a bridge name whose lookup said
   * absent raises no event: when the count of networks moves (`valid_ref_counts`, which counts every
   * table's rows), the names whose lookup said absent are asked again, and so are those whose lookup is
   * in flight if it answers absent, since it may have run before the creation. A network deleted while
   * its `del` fell out of xapi's bounded queue of deleted rows (see `DeletionAudit`) is caught too: when
   * the count drops, the names known are asked again.
   */
  networkCountMoved(dropped: boolean): void {
    const networks = this.o.cache.networks;
    for (const bridge of this.interest.bridges) {
      if (networks.get(bridge).state === 'pending' && !this.queued.bridges.has(bridge)) this.staleBridges.add(bridge);
    }
    this.requeueBridges((bridge) => {
      const state = networks.get(bridge).state;
      return state === 'absent' || (dropped && state === 'known');
    });
  }

  /**
   * What XAPI now says of the network followed for `bridge` (by event or by refresh): its record, or
   * `undefined` once it is gone, which makes the bridge `absent` (no tombstone, unlike VIFs and VMs).
   * Returns whether the network is still followed for `bridge`.
   */
  applyNetworkRecord(bridge: string, record: NetworkRecord | undefined, change: XapiChange): boolean {
    if (record?.bridge === bridge) {
      this.o.cache.networks.set(bridge, { state: 'known', record, deleted: false }, change.networks);
      return true;
    }
    this.o.cache.networks.set(bridge, LOOKUP.absent, change.networks);
    // `bridge` is read-only in XAPI (docs/xapi.md §6), so another name is not expected: both are asked again.
    if (record !== undefined) this.requeueBridges((b) => b === bridge || b === record.bridge);
    return false;
  }

  private applyDelta(cls: Class, add: Iterable<string>, remove: Iterable<string>, table: LookupTable, changed: Set<string>, held: (key: string) => boolean): void {
    const interest = this.interest[cls];
    for (const key of remove) {
      if (!interest.delete(key)) continue;
      if (!held(key)) table.delete(key);
      this.queued[cls].delete(key);
    }
    for (const key of add) {
      if (interest.has(key)) continue;
      interest.add(key);
      this.admit(cls, key, table, changed);
    }
  }

  /**
   * A newly followed key: pending and queued for the next batch (unknown while XAPI is down), unless
   * its record is already known and followed by events (a placed VM's, fetched ahead of its port).
   */
  private admit(cls: Class, key: string, table: LookupTable, changed: Set<string>): void {
    const known = table.get(key);
    if (known.state === 'known' && !known.deleted) return;
    if (!table.askable(key)) {
      // Not a UUID (or a bridge name a filter cannot carry): the filter language has no escapes.
      table.set(key, LOOKUP.absent, changed);
      return;
    }
    const down = this.o.stream.down();
    table.set(key, down ? LOOKUP.unknown : LOOKUP.pending, changed);
    if (!down) this.queued[cls].add(key);
  }

  private requeueBridges(which: (bridge: string) => boolean): void {
    for (const bridge of this.interest.bridges) if (isFilterableBridgeName(bridge) && which(bridge)) this.queued.bridges.add(bridge);
    this.schedule();
  }

  /** The three classes' lookups, each with its undecodable keys reported (and so contained). */
  private async lookup(asked: Record<Class, readonly string[]>, base: LookupOptions): Promise<Found> {
    const undecodable: Record<Class, Set<string>> = { vifs: new Set(), vms: new Set(), bridges: new Set() };
    const options = (cls: Class, what: string): LookupOptions => ({
      ...base,
      batchSize: this.o.lookupBatchSize ?? DEFAULT_LOOKUP_BATCH_SIZE,
      onUndecodable: (key: string, err: CodedError) => {
        undecodable[cls].add(key);
        this.o.logger.warn({ class: what, key, err: describeError(err) }, 'XAPI answer about this object cannot be decoded; it is unknown');
      },
    });
    const caller = this.o.caller;
    const [vifs, vms, bridges] = await Promise.all([
      asked.vifs.length > 0 ? lookupVifsByUuid(caller, asked.vifs, options('vifs', 'VIF')) : new Map<string, VifRecord>(),
      asked.vms.length > 0 ? lookupVmsByUuid(caller, asked.vms, options('vms', 'VM')) : new Map<string, VmRecord>(),
      asked.bridges.length > 0 ? lookupNetworksByBridge(caller, asked.bridges, options('bridges', 'network')) : new Map<string, NetworkRecord>(),
    ]);
    return { vifs, vms, bridges, undecodable };
  }

  private apply(asked: Record<Class, readonly string[]>, found: Found, change: XapiChange): void {
    const { cache } = this.o;
    applyLookups(asked.vifs, found.vifs, found.undecodable.vifs, this.interest.vifs, cache.vifs, change.vifs);
    applyLookups(asked.vms, found.vms, found.undecodable.vms, this.interest.vms, cache.vms, change.vms);
    this.applyNetworkLookups(asked.bridges, found.bridges, found.undecodable.bridges, change);
  }

  private async runLookups(): Promise<void> {
    const signal = this.stopController?.signal;
    const mark = this.o.stream.mark();
    const asked = { vifs: [...this.queued.vifs], vms: [...this.queued.vms], bridges: [...this.queued.bridges] };
    this.queued = { vifs: new Set(), vms: new Set(), bridges: new Set() };
    const anticipation = this.o.anticipation();
    const job = anticipation.take();
    this.keyLookupsInFlight = asked.vifs.length > 0 || asked.vms.length > 0 || asked.bridges.length > 0;
    const options = { batchSize: this.o.lookupBatchSize ?? DEFAULT_LOOKUP_BATCH_SIZE, signal, retries: 1 };
    try {
      const [found, anticipated] = await Promise.all([this.lookup(asked, options), anticipation.fetch(job, options)]);
      const change = emptyChange();
      this.apply(asked, found, change);
      const made = anticipation.apply(anticipated, change);
      for (const uuid of made.vms) this.queued.vms.delete(uuid);
      for (const uuid of made.vifs) this.queued.vifs.delete(uuid);
      this.o.emitChange(change);
      const fetched = found.vifs.size + found.vms.size + found.bridges.size + anticipated.vifs.length + anticipated.vms.length;
      if (fetched > 0) this.o.stream.rewindTo(mark);
      this.o.stream.interestGrew();
    } catch (err) {
      if (signal?.aborted === true) return;
      this.o.logger.warn({ err: describeError(err) }, 'XAPI lookup failed; resynchronising');
      const change = emptyChange();
      const { vifs, vms, networks } = this.o.cache;
      for (const uuid of asked.vifs) if (vifs.get(uuid).state === 'pending') vifs.set(uuid, LOOKUP.unknown, change.vifs);
      for (const uuid of asked.vms) if (vms.get(uuid).state === 'pending') vms.set(uuid, LOOKUP.unknown, change.vms);
      for (const bridge of asked.bridges) if (networks.get(bridge).state === 'pending') networks.set(bridge, LOOKUP.unknown, change.networks);
      this.o.emitChange(change);
      this.o.stream.requestResync();
    } finally {
      this.keyLookupsInFlight = false;
    }
  }

  /**
   * Found → known; missing → absent, even if known before: a deleted network leaves no record behind;
   * undecodable → unknown. Every name asked is reported changed, even when its answer is the same: a
   * name asked again (`requeueBridges`) was not pending, and `outstanding` promises a change at the end.
   */
  private applyNetworkLookups(asked: readonly string[], found: ReadonlyMap<string, NetworkRecord>, undecodable: ReadonlySet<string>, change: XapiChange): void {
    const networks = this.o.cache.networks;
    for (const bridge of asked) {
      const stale = this.staleBridges.delete(bridge);
      if (!this.interest.bridges.has(bridge)) continue;
      const record = found.get(bridge);
      if (record !== undefined) networks.set(bridge, { state: 'known', record, deleted: false }, change.networks);
      else networks.set(bridge, undecodable.has(bridge) ? LOOKUP.unknown : LOOKUP.absent, change.networks);
      change.networks.add(bridge);
      if (record === undefined && stale) this.queued.bridges.add(bridge);
    }
  }
}

interface Found {
  readonly vifs: ReadonlyMap<string, VifRecord>;
  readonly vms: ReadonlyMap<string, VmRecord>;
  readonly bridges: ReadonlyMap<string, NetworkRecord>;
  readonly undecodable: Record<Class, ReadonlySet<string>>;
}

/**
 * Found → known; undecodable → unknown; missing → absent, except that a previously known object keeps
 * its record, marked deleted (docs/design.md §3.2).
 */
function applyLookups<R extends { readonly ref: string; readonly uuid: string }>(
  asked: readonly string[],
  found: ReadonlyMap<string, R>,
  undecodable: ReadonlySet<string>,
  interest: ReadonlySet<string>,
  table: ObjectTable<R>,
  changed: Set<string>,
): void {
  for (const uuid of asked) {
    if (!interest.has(uuid)) continue;
    const record = found.get(uuid) ?? found.get(uuid.toLowerCase());
    if (record !== undefined) {
      table.set(uuid, { state: 'known', record, deleted: false }, changed);
      continue;
    }
    const prev = table.get(uuid);
    if (undecodable.has(uuid) || undecodable.has(uuid.toLowerCase())) table.set(uuid, LOOKUP.unknown, changed);
    else if (prev.state === 'known') table.set(uuid, { state: 'known', record: prev.record, deleted: true }, changed);
    else table.set(uuid, LOOKUP.absent, changed);
  }
}
