import type { XapiValue } from './codec/types.js';
import { XapiError, XapiTransportError } from './errors.js';
import {
  expectString,
  parseHost,
  parseHostPlacement,
  parseNetwork,
  parsePool,
  parseRecordMap,
  parseVif,
  parseVm,
  type HostPlacement,
  type HostRecord,
  type NetworkRecord,
  type PoolRecord,
  type VifRecord,
  type VmRecord,
} from './records.js';
import type { SessionCallOptions, XapiCaller } from './session.js';

export const DEFAULT_LOOKUP_BATCH_SIZE = 200;
/** Lookup batches of one class in flight at once. */
const LOOKUP_CONCURRENCY = 4;

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** `Ref.string_of` writes `OpaqueRef:<uuid>` (reference §2.1). */
const REF_RE = /^OpaqueRef:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * The filter language of `get_all_records_where` has no escapes (reference/xapi.md §6), so only
 * strings of UUID syntax are ever put into a literal.
 */
export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/** Whether `s` is a (non-null) object reference, safe inside a filter literal. */
export function isRef(s: string): boolean {
  return REF_RE.test(s);
}

/**
 * `field "uuid"="a" or field "uuid"="b" …`, one expression per chunk of at most `chunkSize`
 * distinct valid UUIDs. Invalid strings are dropped: XAPI could only answer them `UUID_INVALID`.
 */
export function buildUuidFilters(uuids: Iterable<string>, chunkSize = DEFAULT_LOOKUP_BATCH_SIZE): string[] {
  return buildFieldFilters('uuid', [...uuids].filter(isUuid), chunkSize);
}

/** `field "<column>"="a" or …` per chunk of distinct values; the caller guarantees literal-safe values. */
function buildFieldFilters(column: string, values: Iterable<string>, chunkSize: number): string[] {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`lookup batch size must be a positive integer, got ${chunkSize}`);
  const distinct = [...new Set(values)];
  const filters: string[] = [];
  for (let i = 0; i < distinct.length; i += chunkSize) {
    filters.push(
      distinct
        .slice(i, i + chunkSize)
        .map((v) => `field "${column}"="${v}"`)
        .join(' or '),
    );
  }
  return filters;
}

/**
 * Runs `task` over `items`, at most `LOOKUP_CONCURRENCY` at once: at thousands of objects the
 * per-call round trip, not XAPI's work, would otherwise dominate. The first failure stops further
 * calls and is thrown.
 */
async function boundedEach<T>(items: readonly T[], task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await task(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOOKUP_CONCURRENCY, items.length) }, worker));
}

/** The records matching any of `filters` (one call per filter, a few at once). */
async function recordsWhere<R>(
  caller: XapiCaller,
  cls: 'VIF' | 'VM',
  parse: (ref: string, v: XapiValue) => R,
  filters: readonly string[],
  options: SessionCallOptions,
): Promise<R[]> {
  const out: R[] = [];
  await boundedEach(filters, async (filter) => {
    out.push(...parseRecordMap(cls, await caller.call(`${cls}.get_all_records_where`, [filter], options), parse));
  });
  return out;
}

export interface LookupOptions extends SessionCallOptions {
  readonly batchSize?: number;
}

/**
 * Records by UUID, batched: O(N / batchSize) calls. A UUID missing from the answer (or not of UUID
 * syntax) is absent from the returned map: XAPI has no such object (DESIGN §2 *absent*). XAPI
 * stores UUIDs in lower case; the map is keyed by the UUID as XAPI returns it.
 */
async function byUuid<R extends { uuid: string }>(
  caller: XapiCaller,
  cls: 'VIF' | 'VM',
  parse: (ref: string, v: XapiValue) => R,
  uuids: Iterable<string>,
  options: LookupOptions,
): Promise<Map<string, R>> {
  const out = new Map<string, R>();
  for (const record of await recordsWhere(caller, cls, parse, buildUuidFilters(uuids, options.batchSize), options)) out.set(record.uuid, record);
  return out;
}

export function lookupVifsByUuid(caller: XapiCaller, uuids: Iterable<string>, options: LookupOptions = {}): Promise<Map<string, VifRecord>> {
  return byUuid(caller, 'VIF', parseVif, uuids, options);
}

export function lookupVmsByUuid(caller: XapiCaller, uuids: Iterable<string>, options: LookupOptions = {}): Promise<Map<string, VmRecord>> {
  return byUuid(caller, 'VM', parseVm, uuids, options);
}

/** This host: `session.get_this_host(session, session)` then `host.get_record` (reference §6). */
export async function getThisHost(caller: XapiCaller, options: SessionCallOptions = {}): Promise<HostRecord> {
  return (await fetchThisHost(caller, options)).host;
}

/** This host's record and what it says about the VMs placed on it. */
export async function fetchThisHost(caller: XapiCaller, options: SessionCallOptions = {}): Promise<{ host: HostRecord; placement: HostPlacement }> {
  const ref = expectString(await caller.callOnSelf('session.get_this_host', [], options), 'session.get_this_host answer');
  const record = await caller.call('host.get_record', [ref], options);
  return { host: parseHost(ref, record), placement: parseHostPlacement(ref, record) };
}

/**
 * Records by ref, `get_record` each (a few at once). A ref XAPI answers `HANDLE_INVALID` for is an
 * object deleted since it was named: left out of the answer, not a failure.
 */
async function byRef<R>(caller: XapiCaller, cls: 'VIF' | 'VM', parse: (ref: string, v: XapiValue) => R, refs: Iterable<string>, options: SessionCallOptions): Promise<R[]> {
  const out: R[] = [];
  await boundedEach([...new Set(refs)].filter(isRef), async (ref) => {
    try {
      out.push(parse(ref, await caller.call(`${cls}.get_record`, [ref], options)));
    } catch (err) {
      if (!(err instanceof XapiError && err.code === 'HANDLE_INVALID')) throw err;
    }
  });
  return out;
}

export function lookupVmsByRef(caller: XapiCaller, refs: Iterable<string>, options: SessionCallOptions = {}): Promise<VmRecord[]> {
  return byRef(caller, 'VM', parseVm, refs, options);
}

export function lookupVifsByRef(caller: XapiCaller, refs: Iterable<string>, options: SessionCallOptions = {}): Promise<VifRecord[]> {
  return byRef(caller, 'VIF', parseVif, refs, options);
}

/** Every VIF of the given VMs: `field "VM"="<ref>" or …` (refs compare in their DB string form, §6). */
export function lookupVifsOfVms(caller: XapiCaller, vmRefs: Iterable<string>, options: LookupOptions = {}): Promise<VifRecord[]> {
  const filters = buildFieldFilters('VM', [...vmRefs].filter(isRef), options.batchSize ?? DEFAULT_LOOKUP_BATCH_SIZE);
  return recordsWhere(caller, 'VIF', parseVif, filters, options);
}

/**
 * The VMs XAPI has reserved `hostRef` for (`VM.scheduled_to_be_resident_on`). The field is internal
 * to XAPI (absent from records and events), but a filter is evaluated on the DB row, which holds it:
 * XAPI's own host memory accounting selects these VMs with the same expression
 * (`Db.VM.get_refs_where (Eq (Field "scheduled_to_be_resident_on", …))`, memory_check.ml).
 */
export function lookupVmsScheduledOn(caller: XapiCaller, hostRef: string, options: SessionCallOptions = {}): Promise<VmRecord[]> {
  if (!isRef(hostRef)) return Promise.resolve([]);
  return recordsWhere(caller, 'VM', parseVm, buildFieldFilters('scheduled_to_be_resident_on', [hostRef], 1), options);
}

/** The pool (exactly one per XAPI database); `undefined` if XAPI lists none. */
export async function getPool(caller: XapiCaller, options: SessionCallOptions = {}): Promise<PoolRecord | undefined> {
  return parseRecordMap('pool', await caller.call('pool.get_all_records', [], options), parsePool)[0];
}

export async function getPoolRef(caller: XapiCaller, options: SessionCallOptions = {}): Promise<string | undefined> {
  const refs = await caller.call('pool.get_all', [], options);
  if (!Array.isArray(refs)) throw new XapiTransportError('XAPI_PROTOCOL', 'malformed pool.get_all answer: not an array');
  const first: XapiValue | undefined = (refs as readonly XapiValue[])[0];
  return first === undefined ? undefined : expectString(first, 'pool ref');
}

/**
 * A bridge name can go into a `field "bridge"="…"` literal only if it cannot end or escape it: the
 * filter language has no escapes (reference §6), so names holding `"` or `\` are refused, and so are
 * control characters and lone surrogates, which XML 1.0 (the XML-RPC request) cannot carry faithfully.
 * `""` is refused too: it would match every network without a bridge. A refused name is treated as
 * having no network, the way `isUuid` guards UUID filters.
 */
export function isFilterableBridgeName(name: string): boolean {
  return name !== '' && !UNFILTERABLE_RE.test(name);
}

const UNFILTERABLE_RE = /["\\\p{Cc}\p{Cs}]/u;

/**
 * `field "bridge"="a" or field "bridge"="b" …`, one expression per chunk of at most `chunkSize`
 * distinct names that pass `isFilterableBridgeName`; the others are dropped.
 */
export function buildBridgeFilters(names: Iterable<string>, chunkSize = DEFAULT_LOOKUP_BATCH_SIZE): string[] {
  return buildFieldFilters('bridge', [...names].filter(isFilterableBridgeName), chunkSize);
}

/**
 * Networks by bridge name, without their `VIFs`/`PIFs` ref sets, which list every VIF and PIF of the
 * pool on that network: `network.get_all_where` per batch of names (refs only), then `get_uuid`,
 * `get_bridge` and `get_other_config` of each ref. The map is keyed by the bridge name as read back; a
 * name missing from it has no network. A ref that fails with `HANDLE_INVALID` was destroyed between
 * the two calls: that network is gone, not the lookup failed. XAPI refuses a second network on a
 * bridge name already in use (`BRIDGE_NAME_EXISTS`, `Xapi_network.create`), so a name has at most one.
 */
export async function lookupNetworksByBridge(caller: XapiCaller, names: Iterable<string>, options: LookupOptions = {}): Promise<Map<string, NetworkRecord>> {
  const refs = new Set<string>();
  await boundedEach(buildBridgeFilters(names, options.batchSize), async (filter) => {
    const answer = await caller.call('network.get_all_where', [filter], options);
    if (!Array.isArray(answer)) throw new XapiTransportError('XAPI_PROTOCOL', 'malformed network.get_all_where answer: not an array');
    for (const ref of answer as readonly XapiValue[]) refs.add(expectString(ref, 'network ref'));
  });
  const out = new Map<string, NetworkRecord>();
  // One ref's three reads go out together: a bound of LOOKUP_CONCURRENCY refs keeps at most three
  // times that many calls (and connections) in flight.
  await boundedEach([...refs], async (ref) => {
    const record = await readNetworkFields(caller, ref, options);
    if (record !== undefined && !out.has(record.bridge)) out.set(record.bridge, record);
  });
  return out;
}

/** The fields the daemon uses, by their getters; `undefined` when XAPI says the ref is gone. */
export async function readNetworkFields(caller: XapiCaller, ref: string, options: SessionCallOptions): Promise<NetworkRecord | undefined> {
  const reads = await Promise.allSettled(NETWORK_FIELDS.map(async (field) => [field, await caller.call(`network.get_${field}`, [ref], options)] as const));
  const fields: Record<string, XapiValue> = {};
  let gone = false;
  for (const read of reads) {
    if (read.status === 'fulfilled') fields[read.value[0]] = read.value[1];
    else if (read.reason instanceof XapiError && read.reason.code === 'HANDLE_INVALID') gone = true;
    else throw read.reason;
  }
  return gone ? undefined : parseNetwork(ref, fields);
}

/** What `parseNetwork` reads. */
const NETWORK_FIELDS = ['uuid', 'bridge', 'other_config'] as const;
