import { type ObjectTable, type XapiCache, type XapiChange } from './cache.js';
import type { XapiStruct, XapiValue } from './codec/types.js';
import { parseHost, parseHostPlacement, parseNetwork, parsePool, parseVif, parseVm, refCount, type HostPlacement, type NetworkRecord } from './records.js';

/** One entry of an `event.from` answer: `{id, timestamp, class, operation, ref, snapshot?}` (docs/xapi.md §5.1). */
export interface EventRecord {
  /** Lowercase, as xapi writes it (`String.lowercase_ascii table`, xapi-project/xen-api ocaml/xapi/xapi_event.ml:660). */
  readonly cls: string;
  readonly operation: string;
  readonly ref: string;
  readonly snapshot: XapiValue | undefined;
}

/** A decoded `event.from` answer. */
export interface EventBatch {
  readonly token: string;
  readonly events: readonly EventRecord[];
  /** Entries that were not events (ignored). */
  readonly malformed: number;
  /** Rows per table, every table of the database, subscribed or not (xapi_event.ml:724-733). */
  readonly validRefCounts: ReadonlyMap<string, number>;
}

export function asStruct(v: XapiValue | undefined): XapiStruct | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as XapiStruct) : undefined;
}

export function parseEvent(raw: XapiValue): EventRecord | undefined {
  const s = asStruct(raw);
  if (s === undefined) return undefined;
  const { class: cls, operation, ref } = s;
  if (typeof cls !== 'string' || typeof operation !== 'string' || typeof ref !== 'string') return undefined;
  return { cls: cls.toLowerCase(), operation, ref, snapshot: Object.hasOwn(s, 'snapshot') ? s.snapshot : undefined };
}

/**
 * `{events, valid_ref_counts, token}`, or `undefined` when the answer is not of that shape. A pool member
 * forwards the master's answer with the counts as strings (issue 13 §1), so both forms are read.
 */
export function parseEventBatch(result: XapiValue): EventBatch | undefined {
  const batch = asStruct(result);
  const token = batch?.token;
  const events = batch?.events;
  if (typeof token !== 'string' || !Array.isArray(events)) return undefined;
  const parsed: EventRecord[] = [];
  let malformed = 0;
  for (const raw of events as readonly XapiValue[]) {
    const ev = parseEvent(raw);
    if (ev === undefined) malformed++;
    else parsed.push(ev);
  }
  const validRefCounts = new Map<string, number>();
  for (const [table, count] of Object.entries(asStruct(batch?.valid_ref_counts) ?? {})) {
    const n = typeof count === 'number' ? count : typeof count === 'string' ? Number(count) : Number.NaN;
    if (Number.isSafeInteger(n)) validRefCounts.set(table.toLowerCase(), n);
  }
  return { token, events: parsed, malformed, validRefCounts };
}

/**
 * The database generation a token stands for: its first part. xapi writes `%020Ld,%020Ld` (last matching
 * change, message generation) and reads `""` as generation 0 (xapi_event.ml:37-50); `undefined` for anything else.
 */
export function tokenGeneration(token: string): bigint | undefined {
  if (token === '') return 0n;
  const m = /^(-?\d+),-?\d+$/.exec(token);
  return m?.[1] === undefined ? undefined : BigInt(m[1]);
}

/** Per docs/design.md §3.2 a deleted object keeps its last record (marked deleted) while still of interest. */
export function applyObjectEventTo<R extends { readonly ref: string; readonly uuid: string }>(
  table: ObjectTable<R>,
  ev: EventRecord,
  parse: (ref: string, v: XapiValue) => R,
  changed: Set<string>,
): void {
  const key = table.keyOf(ev.ref);
  if (key === undefined) return;
  if (ev.operation === 'del') {
    markDeleted(table, key, changed);
    return;
  }
  table.set(key, { state: 'known', record: parse(ev.ref, ev.snapshot ?? null), deleted: false }, changed);
}

/** A known object XAPI no longer has: its last record is kept, marked deleted. */
export function markDeleted<R extends { readonly ref: string; readonly uuid: string }>(table: ObjectTable<R>, key: string, changed: Set<string>): void {
  const prev = table.get(key);
  if (prev.state === 'known') table.set(key, { state: 'known', record: prev.record, deleted: true }, changed);
}

/** What an event tells the parts of the watcher beyond the cache tables. */
export interface EventSink {
  /** This host's ref: events for other hosts are ignored. */
  readonly hostRef: string | undefined;
  /** A VM's snapshot (not a deletion), for the VMs placed here. */
  vmChanged(ref: string, snapshot: XapiValue): void;
  /** This host's record changed: what it says about the VMs placed on it. */
  hostPlacement(placement: HostPlacement): void;
  /** A followed network's record (`undefined`: deleted), and the size of its `VIFs` set. */
  networkChanged(bridge: string, ref: string, record: NetworkRecord | undefined, vifs: number, change: XapiChange): void;
}

/** Applies one event to the cache (recording what changed in `change`); throws on a malformed snapshot. */
export function applyEvent(cache: XapiCache, ev: EventRecord, change: XapiChange, sink: EventSink): void {
  const del = ev.operation === 'del';
  if (!del && ev.snapshot === undefined) return;
  const snapshot = ev.snapshot ?? null;
  switch (ev.cls) {
    case 'vif':
      applyObjectEventTo(cache.vifs, ev, parseVif, change.vifs);
      return;
    case 'vm':
      applyObjectEventTo(cache.vms, ev, parseVm, change.vms);
      if (!del) sink.vmChanged(ev.ref, snapshot);
      return;
    case 'network': {
      const bridge = cache.networks.keyOf(ev.ref);
      if (bridge === undefined) return;
      sink.networkChanged(bridge, ev.ref, del ? undefined : parseNetwork(ev.ref, snapshot), del ? 0 : refCount(snapshot, 'VIFs'), change);
      return;
    }
    case 'pool':
      if (!del) cache.setPool(parsePool(ev.ref, snapshot), change);
      return;
    case 'host':
      if (del || ev.ref !== sink.hostRef) return;
      cache.setHost(parseHost(ev.ref, snapshot), change);
      sink.hostPlacement(parseHostPlacement(ev.ref, snapshot));
      return;
    default:
      return;
  }
}
