import type { XapiValue } from './codec/types.js';
import { XapiTransportError } from './errors.js';
import {
  expectString,
  parseHost,
  parseNetwork,
  parsePool,
  parseRecordMap,
  parseVif,
  parseVm,
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

/**
 * The filter language of `get_all_records_where` has no escapes (reference/xapi.md §6), so only
 * strings of UUID syntax are ever put into a literal.
 */
export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/**
 * `field "uuid"="a" or field "uuid"="b" …`, one expression per chunk of at most `chunkSize`
 * distinct valid UUIDs. Invalid strings are dropped: XAPI could only answer them `UUID_INVALID`.
 */
export function buildUuidFilters(uuids: Iterable<string>, chunkSize = DEFAULT_LOOKUP_BATCH_SIZE): string[] {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`lookup batch size must be a positive integer, got ${chunkSize}`);
  const valid = [...new Set([...uuids].filter(isUuid))];
  const filters: string[] = [];
  for (let i = 0; i < valid.length; i += chunkSize) {
    filters.push(
      valid
        .slice(i, i + chunkSize)
        .map((u) => `field "uuid"="${u}"`)
        .join(' or '),
    );
  }
  return filters;
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
  const filters = buildUuidFilters(uuids, options.batchSize);
  // A few batches in flight at once: at thousands of UUIDs the per-call round trip, not XAPI's work,
  // would otherwise dominate a cold start. The first failure stops further calls and is thrown.
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < filters.length) {
      const filter = filters[next++] ?? '';
      try {
        const answer = await caller.call(`${cls}.get_all_records_where`, [filter], options);
        for (const record of parseRecordMap(cls, answer, parse)) out.set(record.uuid, record);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOOKUP_CONCURRENCY, filters.length) }, worker));
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
  const ref = expectString(await caller.callOnSelf('session.get_this_host', [], options), 'session.get_this_host answer');
  return parseHost(ref, await caller.call('host.get_record', [ref], options));
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

export interface NetworkIndex {
  readonly byRef: ReadonlyMap<string, NetworkRecord>;
  /** Bridge name → network; networks without a bridge (`""`) are left out. */
  readonly byBridge: ReadonlyMap<string, NetworkRecord>;
}

export function indexNetworks(networks: Iterable<NetworkRecord>): NetworkIndex {
  const byRef = new Map<string, NetworkRecord>();
  const byBridge = new Map<string, NetworkRecord>();
  for (const n of networks) {
    byRef.set(n.ref, n);
    if (n.bridge !== '') byBridge.set(n.bridge, n);
  }
  return { byRef, byBridge };
}

export async function getNetworks(caller: XapiCaller, options: SessionCallOptions = {}): Promise<NetworkIndex> {
  return indexNetworks(parseRecordMap('network', await caller.call('network.get_all_records', [], options), parseNetwork));
}
