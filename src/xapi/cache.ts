import { indexNetworks, type NetworkIndex } from './lookups.js';
import { sameRecord, type HostRecord, type NetworkRecord, type PoolRecord, type VifRecord, type VmRecord } from './records.js';

/**
 * What XAPI says about one object a row depends on (DESIGN §2): `known` (with its record;
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

/** UUIDs (and singletons) whose record or state changed in one applied batch. */
export interface XapiChange {
  readonly vifs: Set<string>;
  readonly vms: Set<string>;
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

/** Per-UUID lookups of one class, with the ref → uuid index the event stream needs. */
export class ObjectTable<R extends { readonly ref: string; readonly uuid: string }> {
  private readonly entries = new Map<string, XapiLookup<R>>();
  private readonly uuidByRef = new Map<string, string>();

  get(uuid: string): XapiLookup<R> {
    return this.entries.get(uuid) ?? UNKNOWN;
  }

  has(uuid: string): boolean {
    return this.entries.has(uuid);
  }

  uuidOf(ref: string): string | undefined {
    return this.uuidByRef.get(ref);
  }

  /** Sets a UUID's lookup; adds it to `changed` when the state or record differs. */
  set(uuid: string, next: XapiLookup<R>, changed: Set<string>): void {
    const prev = this.entries.get(uuid);
    if (prev?.state === 'known' && (next.state !== 'known' || next.record.ref !== prev.record.ref)) this.uuidByRef.delete(prev.record.ref);
    if (next.state === 'known') this.uuidByRef.set(next.record.ref, uuid);
    this.entries.set(uuid, next);
    if (!sameLookup(prev, next)) changed.add(uuid);
  }

  delete(uuid: string): void {
    const prev = this.entries.get(uuid);
    if (prev?.state === 'known') this.uuidByRef.delete(prev.record.ref);
    this.entries.delete(uuid);
  }

  /** Refs of live (known, not deleted) objects: the per-object event subscriptions. */
  liveRefs(): string[] {
    const refs: string[] = [];
    for (const e of this.entries.values()) if (e.state === 'known' && !e.deleted) refs.push(e.record.ref);
    return refs;
  }

  uuids(): IterableIterator<string> {
    return this.entries.keys();
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * The XAPI snapshot the daemon reads: lookups for the VIF and VM UUIDs of interest, this host,
 * the pool and every network. Written only by the watcher.
 */
export class XapiCache {
  readonly vifs = new ObjectTable<VifRecord>();
  readonly vms = new ObjectTable<VmRecord>();
  private networkIndex: NetworkIndex = indexNetworks([]);
  private poolRecord: PoolRecord | undefined;
  private hostRecord: HostRecord | undefined;

  vif(uuid: string): XapiLookup<VifRecord> {
    return this.vifs.get(uuid);
  }

  vm(uuid: string): XapiLookup<VmRecord> {
    return this.vms.get(uuid);
  }

  get pool(): PoolRecord | undefined {
    return this.poolRecord;
  }

  get host(): HostRecord | undefined {
    return this.hostRecord;
  }

  get networks(): NetworkIndex {
    return this.networkIndex;
  }

  networkByBridge(bridge: string): NetworkRecord | undefined {
    return this.networkIndex.byBridge.get(bridge);
  }

  setPool(pool: PoolRecord | undefined, change: XapiChange): void {
    if (!sameOptional(this.poolRecord, pool)) change.pool = true;
    this.poolRecord = pool;
  }

  setHost(host: HostRecord | undefined, change: XapiChange): void {
    if (!sameOptional(this.hostRecord, host)) change.host = true;
    this.hostRecord = host;
  }

  /** Replaces every network; changed, added and removed ones are reported by uuid. */
  replaceNetworks(networks: Iterable<NetworkRecord>, change: XapiChange): void {
    const next = indexNetworks(networks);
    for (const [ref, n] of next.byRef) {
      const prev = this.networkIndex.byRef.get(ref);
      if (prev === undefined || !sameRecord(prev, n)) change.networks.add(n.uuid);
    }
    for (const [ref, n] of this.networkIndex.byRef) if (!next.byRef.has(ref)) change.networks.add(n.uuid);
    this.networkIndex = next;
  }

  upsertNetwork(network: NetworkRecord, change: XapiChange): void {
    const all = new Map(this.networkIndex.byRef);
    all.set(network.ref, network);
    this.replaceNetworks(all.values(), change);
  }

  deleteNetwork(ref: string, change: XapiChange): void {
    if (!this.networkIndex.byRef.has(ref)) return;
    const all = new Map(this.networkIndex.byRef);
    all.delete(ref);
    this.replaceNetworks(all.values(), change);
  }
}

function sameOptional<R extends object>(a: R | undefined, b: R | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return sameRecord(a, b);
}
