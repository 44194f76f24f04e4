import type { XapiCache, XapiLookup } from '../xapi/cache.js';
import type { OtherConfig } from '../xapi/records.js';
import type { XapiWatcherPhase } from '../xapi/watcher.js';
import type { StringMap, Uuid, XapiHost, XapiNetwork, XapiObjectState, XapiPool, XapiView, XapiVif, XapiVm } from '../reconcile/views.js';

const ABSENT = { state: 'absent' } as const;
const PENDING = { state: 'pending' } as const;
const UNKNOWN = { state: 'unknown' } as const;

/** The watcher's readiness, as this adapter needs it to tell `pending` from `unknown` from `absent`. */
export interface XapiSyncState {
  readonly phase: XapiWatcherPhase;
  /** True once one full sync (host, pool, networks) completed since start or `flush-cache`. */
  readonly synced: boolean;
}

/**
 * The reconciler's `XapiView` answered from the XAPI watcher's cache, without copying it. Records are
 * converted to the view's shape once and memoised per record object (records are immutable: a change
 * makes a new one), so a pass costs Map lookups.
 *
 * Singletons (docs/design.md §3): a record we hold is `known` (even while XAPI is away: the last word XAPI
 * said); without one, `absent` once a full sync said so, `pending` while the first sync is under way,
 * `unknown` while XAPI is unreachable or not started (waiting for the init cookie). VIFs, VMs and
 * networks (by bridge name) are the watcher's per-key lookups.
 */
export class CacheXapiView implements XapiView {
  private readonly cache: XapiCache;
  private readonly sync: () => XapiSyncState;
  private readonly maps = new WeakMap<OtherConfig, StringMap>();

  constructor(cache: XapiCache, sync: () => XapiSyncState) {
    this.cache = cache;
    this.sync = sync;
  }

  host(): XapiObjectState<XapiHost> {
    const host = this.cache.host;
    if (host !== undefined) return { state: 'known', value: { uuid: host.uuid, softwareVersion: this.toMap(host.softwareVersion) } };
    return this.missing();
  }

  pool(): XapiObjectState<XapiPool> {
    const pool = this.cache.pool;
    if (pool !== undefined) return { state: 'known', value: { otherConfig: this.toMap(pool.otherConfig) } };
    return this.missing();
  }

  networkByBridge(bridge: string): XapiObjectState<XapiNetwork> {
    return this.fromLookup(this.cache.networkByBridge(bridge));
  }

  vif(uuid: Uuid): XapiObjectState<XapiVif> {
    return this.fromLookup(this.cache.vif(uuid));
  }

  vm(uuid: Uuid): XapiObjectState<XapiVm> {
    return this.fromLookup(this.cache.vm(uuid));
  }

  private fromLookup(lookup: XapiLookup<{ readonly uuid: string; readonly otherConfig: OtherConfig }>): XapiObjectState<XapiVif & XapiVm & XapiNetwork> {
    switch (lookup.state) {
      case 'known':
        return { state: 'known', value: { uuid: lookup.record.uuid, otherConfig: this.toMap(lookup.record.otherConfig) } };
      case 'absent':
        return ABSENT;
      case 'pending':
        // A lookup can only be in flight while the watcher runs; before it starts (init cookie not
        // there yet) or while XAPI is unreachable the answer is unknown (docs/design.md §3).
        return this.watcherRunning() ? PENDING : UNKNOWN;
      case 'unknown':
        return UNKNOWN;
    }
  }

  private watcherRunning(): boolean {
    const { phase } = this.sync();
    return phase === 'syncing' || phase === 'live';
  }

  private missing(): XapiObjectState<never> {
    const { phase, synced } = this.sync();
    if (synced) return ABSENT;
    return phase === 'syncing' ? PENDING : UNKNOWN;
  }

  private toMap(config: OtherConfig): StringMap {
    let map = this.maps.get(config);
    if (map === undefined) {
      map = new Map(Object.entries(config));
      this.maps.set(config, map);
    }
    return map;
  }
}
