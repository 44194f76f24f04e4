import { OvsdbError, OvsdbRpcError, isRecord } from './errors.js';
import type { OvsdbConnection } from './connection.js';
import { ZERO_UUID } from './notation.js';
import type { MonitorSpec, Replica, ReplicaChange, UpdateFormat } from './replica.js';

/** Tried in this order; a server answering `"unknown method"` gets the next one (docs/ovsdb.md §2). */
export const MONITOR_METHODS = ['monitor_cond_since', 'monitor_cond', 'monitor'] as const;
export type MonitorMethod = (typeof MONITOR_METHODS)[number];

/** `<monitor-requests>` for `method`: an array of requests per table for the conditional forms. */
export function monitorRequests(spec: MonitorSpec, method: MonitorMethod): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [table, columns] of Object.entries(spec)) {
    const request = { columns: Object.keys(columns) };
    out[table] = method === 'monitor' ? request : [request];
  }
  return out;
}

export interface MonitorOptions {
  readonly database: string;
  /** The `<json-value>` naming the monitor; unique per connection (RFC 7047 §4.1.5). */
  readonly monitorId: string;
  readonly replica: Replica;
  /**
   * The `monitor_cond_since` resume point, read before and updated during the monitor. Only clustered
   * or relay databases ever return a non-zero id (docs/ovsdb.md §2); it is zeroed on inconsistency.
   */
  readonly txnId: { value: string };
  readonly timeoutMs?: number;
  /** Called with every applied change, including the initial (re)build. Must not throw. */
  readonly onChange: (change: ReplicaChange) => void;
}

/**
 * Starts monitoring on a fresh connection and fills the replica: sends `monitor_cond_since` (with the
 * last txn id when we hold a replica), falling back to `monitor_cond` then `monitor` on "unknown method".
 * The replica is ready (exposed) only once the reply is applied. Notifications that arrive before that
 * (possible within one read: the reply and an update in the same chunk) are queued and applied after.
 * An update that does not fit the replica throws from the notification handler, which makes the
 * connection close with `OVSDB_REPLICA_INCONSISTENT`: the session then reconnects for a full resync.
 * Resolves with the method the server accepted.
 */
export async function startMonitor(conn: OvsdbConnection, options: MonitorOptions): Promise<MonitorMethod> {
  const { replica, txnId, monitorId } = options;
  let queue: [string, unknown][] | undefined = [];

  const handle = (method: string, params: unknown): void => {
    if (!Array.isArray(params) || JSON.stringify(params[0]) !== JSON.stringify(monitorId)) return;
    let updates: unknown;
    let format: UpdateFormat;
    let nextTxnId: unknown;
    switch (method) {
      case 'update3': // [json-value, last-txn-id, table-updates2] (ovsdb-server(7) §4.1.16)
        nextTxnId = params[1];
        updates = params[2];
        format = 'update2';
        break;
      case 'update2':
        updates = params[1];
        format = 'update2';
        break;
      case 'update':
        updates = params[1];
        format = 'update';
        break;
      default:
        return;
    }
    try {
      options.onChange(replica.apply(updates, format));
    } catch (err) {
      txnId.value = ZERO_UUID;
      throw err;
    }
    if (typeof nextTxnId === 'string') txnId.value = nextTxnId;
  };

  const unsubscribe = conn.onNotification((method, params) => {
    if (queue !== undefined) queue.push([method, params]);
    else handle(method, params);
  });

  try {
    const since = txnId.value;
    for (const method of MONITOR_METHODS) {
      const params: unknown[] = [options.database, monitorId, monitorRequests(replica.spec, method)];
      if (method === 'monitor_cond_since') params.push(since);
      let result: unknown;
      try {
        result = await conn.request(method, params, { timeoutMs: options.timeoutMs });
      } catch (err) {
        if (err instanceof OvsdbRpcError && err.errorString === 'unknown method') continue;
        throw err;
      }
      applyInitial(method, result, options);
      const pending: [string, unknown][] = queue;
      queue = undefined;
      for (const [m, p] of pending) handle(m, p);
      return method;
    }
    throw new OvsdbError('OVSDB_PROTOCOL', 'the server supports none of monitor_cond_since, monitor_cond, monitor');
  } catch (err) {
    unsubscribe();
    throw err;
  }
}

function applyInitial(method: MonitorMethod, result: unknown, options: MonitorOptions): void {
  const { replica, txnId } = options;
  if (method === 'monitor_cond_since') {
    // [found, last-txn-id, table-updates2] (ovsdb-server(7) §4.1.15)
    if (!Array.isArray(result) || result.length !== 3 || typeof result[0] !== 'boolean' || typeof result[1] !== 'string') {
      throw new OvsdbError('OVSDB_PROTOCOL', 'monitor_cond_since: malformed reply');
    }
    const [found, lastId, updates] = result as [boolean, string, unknown];
    let change: ReplicaChange;
    try {
      // found=true (clustered/relay only): the reply is the delta since our txn id, over our replica.
      change = found ? replica.apply(updates, 'update2', true) : replica.rebuild(updates, 'update2');
    } catch (err) {
      txnId.value = ZERO_UUID;
      throw err;
    }
    txnId.value = lastId;
    options.onChange(change);
    return;
  }
  if (!isRecord(result)) throw new OvsdbError('OVSDB_PROTOCOL', `${method}: malformed reply`);
  txnId.value = ZERO_UUID;
  options.onChange(replica.rebuild(result, method === 'monitor' ? 'update' : 'update2'));
}
