import type { XapiValue } from './codec/types.js';
import { CodedError } from '../errors.js';
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

/** `Ref.string_of` writes `OpaqueRef:<uuid>` (docs/xapi.md §2.1). */
const REF_RE = /^OpaqueRef:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * The filter language of `get_all_records_where` has no escapes (docs/xapi.md §6), so only
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
  return chunks(values, chunkSize).map((chunk) => fieldFilter(column, chunk));
}

function fieldFilter(column: string, values: readonly string[]): string {
  return values.map((v) => `field "${column}"="${v}"`).join(' or ');
}

/** Distinct `values` in chunks of at most `chunkSize`. */
function chunks(values: Iterable<string>, chunkSize: number): string[][] {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`lookup batch size must be a positive integer, got ${chunkSize}`);
  const distinct = [...new Set(values)];
  const out: string[][] = [];
  for (let i = 0; i < distinct.length; i += chunkSize) out.push(distinct.slice(i, i + chunkSize));
  return out;
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

/** An answer the codec or a record parser could not read (`XAPI_PROTOCOL`), as opposed to an error XAPI sent. */
export function isUndecodable(err: unknown): err is CodedError {
  return err instanceof CodedError && err.code === 'XAPI_PROTOCOL';
}

/**
 * Asks `ask` about each chunk of keys. With `options.onUndecodable`, a chunk whose answer cannot be
 * decoded is asked again key by key, and a key whose own answer still cannot be decoded is reported
 * instead of failing the whole lookup: one odd record makes only its own object unknown (issue 13 §1).
 * `ask` must tolerate being asked again about keys of a chunk that failed.
 */
async function askIsolated(chunked: readonly (readonly string[])[], ask: (keys: readonly string[]) => Promise<void>, options: LookupOptions): Promise<void> {
  const report = options.onUndecodable;
  const askOne = async (key: string): Promise<void> => {
    try {
      await ask([key]);
    } catch (err) {
      if (report === undefined || !isUndecodable(err)) throw err;
      report(key, err);
    }
  };
  await boundedEach(chunked, async (keys) => {
    try {
      await ask(keys);
    } catch (err) {
      if (report === undefined || !isUndecodable(err)) throw err;
      if (keys.length === 1) report(keys[0] as string, err);
      else await boundedEach(keys, askOne);
    }
  });
}

/** The records whose `column` is one of `values` (one call per chunk, a few at once). */
async function recordsWhere<R>(
  caller: XapiCaller,
  cls: 'VIF' | 'VM',
  parse: (ref: string, v: XapiValue) => R,
  column: string,
  values: Iterable<string>,
  options: LookupOptions,
): Promise<R[]> {
  const out: R[] = [];
  const callOptions = callOptionsOf(options);
  await askIsolated(chunks(values, options.batchSize ?? DEFAULT_LOOKUP_BATCH_SIZE), async (keys) => {
    out.push(...parseRecordMap(cls, await caller.call(`${cls}.get_all_records_where`, [fieldFilter(column, keys)], callOptions), parse));
  }, options);
  return out;
}

/** The session options of a lookup (what the session does not know about is left out). */
function callOptionsOf(options: LookupOptions): SessionCallOptions {
  const { batchSize: _batchSize, onUndecodable: _onUndecodable, ...call } = options;
  return call;
}

export interface LookupOptions extends SessionCallOptions {
  readonly batchSize?: number;
  /**
   * When set, an answer that cannot be decoded is asked again key by key (uuid, ref, VM ref or bridge
   * name, as the lookup is keyed), and a key that still fails is reported here, not thrown.
   */
  readonly onUndecodable?: ((key: string, err: CodedError) => void) | undefined;
}

/**
 * Records by UUID, batched: O(N / batchSize) calls. A UUID missing from the answer (or not of UUID
 * syntax) is absent from the returned map: XAPI has no such object (docs/design.md §3 *absent*). XAPI
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
  for (const record of await recordsWhere(caller, cls, parse, 'uuid', [...uuids].filter(isUuid), options)) out.set(record.uuid, record);
  return out;
}

export function lookupVifsByUuid(caller: XapiCaller, uuids: Iterable<string>, options: LookupOptions = {}): Promise<Map<string, VifRecord>> {
  return byUuid(caller, 'VIF', parseVif, uuids, options);
}

export function lookupVmsByUuid(caller: XapiCaller, uuids: Iterable<string>, options: LookupOptions = {}): Promise<Map<string, VmRecord>> {
  return byUuid(caller, 'VM', parseVm, uuids, options);
}

/** This host's record (see `fetchThisHost`). */
export async function getThisHost(caller: XapiCaller, options: SessionCallOptions = {}, installationUuid?: string): Promise<HostRecord> {
  return (await fetchThisHost(caller, options, installationUuid)).host;
}

/**
 * This host's record and what it says about the VMs placed on it. The host is `host.get_by_uuid` of
 * the inventory's `INSTALLATION_UUID` when there is one: `session.get_this_host` names the host that
 * processed the login (`~this_host:host` in `Session.create`, xapi-project/xen-api
 * ocaml/xapi/xapi_session.ml:662), which for a login redirected from a pool member (HOST_IS_SLAVE) is
 * the master. Only without an inventory uuid is the session asked (on the local socket it is this host).
 */
export async function fetchThisHost(
  caller: XapiCaller,
  options: SessionCallOptions = {},
  installationUuid?: string,
): Promise<{ host: HostRecord; placement: HostPlacement; notInPool?: string }> {
  let ref: string | undefined;
  let notInPool: string | undefined;
  if (installationUuid !== undefined && installationUuid !== '') {
    try {
      ref = expectString(await caller.call('host.get_by_uuid', [installationUuid], options), 'host.get_by_uuid answer');
    } catch (err) {
      // An inventory that names no host of the pool XAPI speaks for (a wrong --xapi, a copied inventory):
      // the session's host is the best guess left, and the caller says so loudly.
      if (!(err instanceof XapiError && err.code === 'UUID_INVALID')) throw err;
      notInPool = installationUuid;
    }
  }
  ref ??= expectString(await caller.callOnSelf('session.get_this_host', [], options), 'session.get_this_host answer');
  const record = await caller.call('host.get_record', [ref], options);
  return { host: parseHost(ref, record), placement: parseHostPlacement(ref, record), ...(notInPool === undefined ? {} : { notInPool }) };
}

/**
 * Records by ref, `get_record` each (a few at once). A ref XAPI answers `HANDLE_INVALID` for is an
 * object deleted since it was named: left out of the answer, not a failure.
 */
async function byRef<R>(caller: XapiCaller, cls: 'VIF' | 'VM', parse: (ref: string, v: XapiValue) => R, refs: Iterable<string>, options: LookupOptions): Promise<R[]> {
  const out: R[] = [];
  const callOptions = callOptionsOf(options);
  const one = [...new Set(refs)].filter(isRef).map((ref) => [ref]);
  await askIsolated(one, async ([ref = '']) => {
    try {
      out.push(parse(ref, await caller.call(`${cls}.get_record`, [ref], callOptions)));
    } catch (err) {
      if (!(err instanceof XapiError && err.code === 'HANDLE_INVALID')) throw err;
    }
  }, options);
  return out;
}

export function lookupVmsByRef(caller: XapiCaller, refs: Iterable<string>, options: LookupOptions = {}): Promise<VmRecord[]> {
  return byRef(caller, 'VM', parseVm, refs, options);
}

export function lookupVifsByRef(caller: XapiCaller, refs: Iterable<string>, options: LookupOptions = {}): Promise<VifRecord[]> {
  return byRef(caller, 'VIF', parseVif, refs, options);
}

/** Every VIF of the given VMs: `field "VM"="<ref>" or …` (refs compare in their DB string form, §6). */
export function lookupVifsOfVms(caller: XapiCaller, vmRefs: Iterable<string>, options: LookupOptions = {}): Promise<VifRecord[]> {
  return recordsWhere(caller, 'VIF', parseVif, 'VM', [...vmRefs].filter(isRef), options);
}

/**
 * The VMs XAPI has reserved `hostRef` for (`VM.scheduled_to_be_resident_on`, a public DynamicRO field,
 * present in records and events: xapi-project/xen-api ocaml/idl/datamodel_vm.ml:2844-2857). A XAPI
 * whose database lacks the column answers `INTERNAL_ERROR ["missing field"; column; ""]`
 * (`DBCache_NotFound`, ocaml/database/db_cache_types.ml:189), not `INVALID_VALUE`.
 */
export function lookupVmsScheduledOn(caller: XapiCaller, hostRef: string, options: LookupOptions = {}): Promise<VmRecord[]> {
  if (!isRef(hostRef)) return Promise.resolve([]);
  return recordsWhere(caller, 'VM', parseVm, 'scheduled_to_be_resident_on', [hostRef], options);
}

/** Whether `err` is xapi's answer to a where-filter naming a column its database does not have. */
export function isMissingColumn(err: unknown): boolean {
  return err instanceof XapiError && err.code === 'INTERNAL_ERROR' && err.params[0] === 'missing field';
}

/**
 * The refs of the objects among `uuids` that XAPI still has: `get_all_where` (refs only, no records)
 * per chunk. What a deletion check needs, at a few bytes per object.
 */
export async function existingRefsByUuid(caller: XapiCaller, cls: 'VIF' | 'VM', uuids: Iterable<string>, options: LookupOptions = {}): Promise<Set<string>> {
  const refs = new Set<string>();
  const callOptions = callOptionsOf(options);
  await boundedEach(chunks([...uuids].filter(isUuid), options.batchSize ?? DEFAULT_LOOKUP_BATCH_SIZE), async (keys) => {
    for (const ref of expectRefList(await caller.call(`${cls}.get_all_where`, [fieldFilter('uuid', keys)], callOptions), `${cls}.get_all_where`)) refs.add(ref);
  });
  return refs;
}

function expectRefList(answer: XapiValue, what: string): string[] {
  if (!Array.isArray(answer)) throw new XapiTransportError('XAPI_PROTOCOL', `malformed ${what} answer: not an array`);
  return (answer as readonly XapiValue[]).map((ref) => expectString(ref, `${what} ref`));
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
 * filter language has no escapes (docs/xapi.md §6), so names holding `"` or `\` are refused, and so are
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
  const out = new Map<string, NetworkRecord>();
  const callOptions = callOptionsOf(options);
  const named = chunks([...names].filter(isFilterableBridgeName), options.batchSize ?? DEFAULT_LOOKUP_BATCH_SIZE);
  await askIsolated(named, async (keys) => {
    const refs = expectRefList(await caller.call('network.get_all_where', [fieldFilter('bridge', keys)], callOptions), 'network.get_all_where');
    // One ref's three reads go out together: a bound of LOOKUP_CONCURRENCY refs keeps at most three
    // times that many calls (and connections) in flight.
    await boundedEach(refs, async (ref) => {
      const record = await readNetworkFields(caller, ref, callOptions);
      if (record !== undefined && !out.has(record.bridge)) out.set(record.bridge, record);
    });
  }, options);
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
