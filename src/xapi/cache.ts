import { isFilterableBridgeName, isUuid } from './lookups.js';
import { sameRecord, type HostRecord, type NetworkRecord, type PoolRecord, type VifRecord, type VmRecord } from './records.js';

/**
 * What XAPI says about one object a row depends on (docs/design.md §3): `known` (with its record;
 * `deleted` when XAPI deleted it since, and the last record is kept while the port exists),
 * `absent` (no such object), `pending` (a lookup is in flight), `unknown` (XAPI unreachable or
 * the lookup failed).
 */
export type XapiLookup<R> =
  | { readonly state: 'known'; readonly record: R; readonly deleted: boolean }
  | { readonly state: 'absent' }
  | { readonly state: 'pending' }
  | { readonly state: 'unknown' };

const ABSENT = { state: 'absent' } as const;
const PENDING = { state: 'pending' } as const;
const UNKNOWN = { state: 'unknown' } as const;
export const LOOKUP = { absent: ABSENT, pending: PENDING, unknown: UNKNOWN } as const;

/** What changed in one applied batch: table keys whose record or lookup state changed, and singletons. */
export interface XapiChange {
  readonly vifs: Set<string>;
  readonly vms: Set<string>;
  /** Bridge names (the keys of `XapiCache.networks`). */
  readonly networks: Set<string>;
  pool: boolean;
  host: boolean;
}

export function emptyChange(): XapiChange {
  return { vifs: new Set(), vms: new Set(), networks: new Set(), pool: false, host: false };
}

export function isEmptyChange(c: XapiChange): boolean {
  return c.vifs.size === 0 && c.vms.size === 0 && c.networks.size === 0 && !c.pool && !c.host;
}

function sameLookup<R extends object>(a: XapiLookup<R> | undefined, b: XapiLookup<R>): boolean {
  if (a === undefined || a.state !== b.state) return false;
  if (a.state !== 'known' || b.state !== 'known') return true;
  return a.deleted === b.deleted && sameRecord(a.record, b.record);
}

/**
 * Lookups of one class keyed by what the database names the object by (a VIF or VM uuid, a bridge
 * name), with the ref → key index the event stream needs.
 */
export class ObjectTable<R extends { readonly ref: string; readonly uuid: string }> {
  private readonly entries = new Map<string, XapiLookup<R>>();
  private readonly keyByRef = new Map<string, string>();

  /** `askable(key)`: XAPI can be asked about `key`; any other key has no object (`absent`). */
  constructor(readonly askable: (key: string) => boolean) {}

  /** A key never set is `unknown` (nobody asked XAPI), or `absent` if it cannot be asked (e.g. a bridge named `""`). */
  get(key: string): XapiLookup<R> {
    return this.entries.get(key) ?? (this.askable(key) ? UNKNOWN : ABSENT);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The key of the known object `ref` (a uuid, or a bridge name for networks). */
  keyOf(ref: string): string | undefined {
    return this.keyByRef.get(ref);
  }

  /** Sets a key's lookup; adds the key to `changed` when the state or record differs. */
  set(key: string, next: XapiLookup<R>, changed: Set<string>): void {
    const prev = this.entries.get(key);
    if (prev?.state === 'known' && (next.state !== 'known' || next.record.ref !== prev.record.ref)) this.keyByRef.delete(prev.record.ref);
    if (next.state === 'known') this.keyByRef.set(next.record.ref, key);
    this.entries.set(key, next);
    if (!sameLookup(prev, next)) changed.add(key);
  }

  delete(key: string): void {
    const prev = this.entries.get(key);
    if (prev?.state === 'known') this.keyByRef.delete(prev.record.ref);
    this.entries.delete(key);
  }

  /** Refs of live (known, not deleted) objects: the per-object event subscriptions. */
  liveRefs(): string[] {
    const refs: string[] = [];
    for (const e of this.entries.values()) if (e.state === 'known' && !e.deleted) refs.push(e.record.ref);
    return refs;
  }

  /** Every key (uuid, or bridge name for networks). */
  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * The XAPI snapshot the daemon reads: lookups for the VIF and VM UUIDs and the bridge names of
 * interest, this host and the pool. Written only by the watcher.
 */
export class XapiCache {
  readonly vifs = new ObjectTable<VifRecord>(isUuid);
  readonly vms = new ObjectTable<VmRecord>(isUuid);
  /** Keyed by bridge name: the network whose `bridge` field is that name. */
  readonly networks = new ObjectTable<NetworkRecord>(isFilterableBridgeName);
  private poolRecord: PoolRecord | undefined;
  private hostRecord: HostRecord | undefined;

  vif(uuid: string): XapiLookup<VifRecord> {
    return this.vifs.get(uuid);
  }

  vm(uuid: string): XapiLookup<VmRecord> {
    return this.vms.get(uuid);
  }

  networkByBridge(bridge: string): XapiLookup<NetworkRecord> {
    return this.networks.get(bridge);
  }

  get pool(): PoolRecord | undefined {
    return this.poolRecord;
  }

  get host(): HostRecord | undefined {
    return this.hostRecord;
  }

  setPool(pool: PoolRecord | undefined, change: XapiChange): void {
    if (!sameOptional(this.poolRecord, pool)) change.pool = true;
    this.poolRecord = pool;
  }

  setHost(host: HostRecord | undefined, change: XapiChange): void {
    if (!sameOptional(this.hostRecord, host)) change.host = true;
    this.hostRecord = host;
  }
}

function sameOptional<R extends object>(a: R | undefined, b: R | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return sameRecord(a, b);
}
