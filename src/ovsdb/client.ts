import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { transactionOutcome, type TransactionOutcome } from '../outcomes.js';
import type { BackoffPolicy } from '../time/backoff.js';
import { DEFAULT_PROBE_INTERVAL_MS, DEFAULT_REQUEST_TIMEOUT_MS, OvsdbConnection, type ConnectionOptions } from './connection.js';
import { OvsdbError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from './framing.js';
import { startMonitor, type MonitorMethod } from './monitor.js';
import { ZERO_UUID } from './notation.js';
import { comment as commentOp, parseTransactResult, type Operation, type OperationResult } from './operations.js';
import { formatRemote, parseRemote, type OvsdbRemote } from './remote.js';
import { DEFAULT_MONITOR_SPEC, Replica, type MonitorSpec, type ReplicaChange } from './replica.js';
import { OvsdbSession, type SessionPhase } from './session.js';
import type { Clock } from '../time/clock.js';

export interface OvsdbClientOptions {
  /** `unix:PATH` or `tcp:HOST:PORT` (or an already parsed remote). Invalid → throws `OVSDB_REMOTE_INVALID`. */
  readonly remote: string | OvsdbRemote;
  readonly logger: Logger;
  /** Database name (default `Open_vSwitch`). */
  readonly database?: string;
  /** Our echo probe after this much silence; no answer within as long again drops the connection (default 5000, 0 = off). */
  readonly probeIntervalMs?: number;
  /** Per-request timeout for transact and monitor requests (default 30000). */
  readonly requestTimeoutMs?: number;
  /** Cap on one incoming message (default 64 MiB). */
  readonly maxMessageBytes?: number;
  /** Reconnect backoff (default `DEFAULT_BACKOFF` of time/backoff.ts). */
  readonly backoff?: BackoffPolicy;
  /** Monitored tables and columns (default `DEFAULT_MONITOR_SPEC`). */
  readonly tables?: MonitorSpec;
  readonly clock?: Clock;
  readonly random?: () => number;
}

/** The client's state as health and metrics see it. */
export type OvsdbClientState = 'disconnected' | 'connecting' | 'monitoring';

export interface OvsdbClientCounters {
  /** Successful connections after the first (each one triggered a full resync). */
  readonly reconnects: number;
  readonly transactions: Readonly<Record<TransactionOutcome, number>>;
  /** The monitor method the server accepted last (`monitor_cond_since` normally). */
  readonly monitorMethod: MonitorMethod | undefined;
}

export interface TransactOptions {
  /** Appended as a `comment` operation: recorded with the commit in the database log (docs/ovsdb.md §3). */
  readonly comment?: string;
  readonly timeoutMs?: number;
}

interface Listeners {
  change: ((change: ReplicaChange) => void)[];
  state: ((state: OvsdbClientState) => void)[];
}

/**
 * The daemon's only path to ovsdb-server.
 *
 * Contract:
 * - `start()` begins connecting in the background and never throws; a server that is down is retried
 *   forever with capped backoff. `close()` stops it and resolves once nothing is left running.
 * - `replica.ready` is true, and `replica.table(name)` returns rows, only while a complete copy is held:
 *   after the initial monitor reply of the current connection is applied. On a disconnect it becomes
 *   not ready until the resync after the reconnect is applied (docs/design.md §4.6: no half-built view).
 * - `on('change')` receives every applied change (rows inserted/modified/deleted per table; a resync
 *   reports rows that disappeared while disconnected as deleted). `on('state')` receives
 *   `connecting` / `monitoring` / `disconnected` transitions.
 * - `transact(ops)` sends one transaction on the current connection. It resolves with one result per
 *   operation, or rejects with `OvsdbOperationError` (in-band, RFC 7047 §4.1.3), `OvsdbRpcError`,
 *   `OVSDB_TIMEOUT`, `OVSDB_CONNECTION_CLOSED` (the reply was lost: the commit may or may not have
 *   happened, so writes must be idempotent) or `OVSDB_NOT_CONNECTED`. It never queues for a reconnect:
 *   the reconcile scheduler (sync/scheduler.ts) retries (`isTransient` in retry.ts classifies).
 */
export class OvsdbClient {
  readonly remote: OvsdbRemote;
  readonly replica: Replica;
  private readonly log: Logger;
  private readonly database: string;
  private readonly requestTimeoutMs: number;
  private readonly session: OvsdbSession<OvsdbConnection>;
  private readonly txnId = { value: ZERO_UUID };
  private readonly listeners: Listeners = { change: [], state: [] };
  private readonly transactions: Record<TransactionOutcome, number> = {
    committed: 0,
    operation_error: 0,
    rpc_error: 0,
    timeout: 0,
    protocol_error: 0,
    connection_lost: 0,
  };
  private monitorMethod: MonitorMethod | undefined;
  private stateValue: OvsdbClientState = 'disconnected';

  constructor(options: OvsdbClientOptions) {
    this.remote = typeof options.remote === 'string' ? parseRemote(options.remote) : options.remote;
    this.log = options.logger;
    this.database = options.database ?? 'Open_vSwitch';
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.replica = new Replica(options.tables ?? DEFAULT_MONITOR_SPEC);
    const connectionOptions: ConnectionOptions = {
      logger: options.logger,
      probeIntervalMs: options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS,
      requestTimeoutMs: this.requestTimeoutMs,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      clock: options.clock,
    };
    this.session = new OvsdbSession<OvsdbConnection>({
      logger: options.logger,
      target: formatRemote(this.remote),
      backoff: options.backoff,
      random: options.random,
      clock: options.clock,
      connect: (signal) => OvsdbConnection.connect(this.remote, connectionOptions, signal),
      setup: async (conn) => {
        this.monitorMethod = await startMonitor(conn, {
          database: this.database,
          monitorId: 'ovs-xapi-sync',
          replica: this.replica,
          txnId: this.txnId,
          timeoutMs: this.requestTimeoutMs,
          onChange: (change) => {
            this.emit('change', change);
          },
        });
      },
      onPhase: (phase) => {
        this.onPhase(phase);
      },
    });
  }

  get state(): OvsdbClientState {
    return this.stateValue;
  }

  get counters(): OvsdbClientCounters {
    return { reconnects: this.session.reconnects, transactions: { ...this.transactions }, monitorMethod: this.monitorMethod };
  }

  /**
   * Readiness as the health endpoint reports it (a `CheckResult` of health/checks.ts): ready while a
   * complete replica of the current connection is held.
   */
  readiness(): { readonly ok: boolean; readonly detail: string } {
    const remote = formatRemote(this.remote);
    return this.stateValue === 'monitoring' && this.replica.ready
      ? { ok: true, detail: `monitoring ${remote}` }
      : { ok: false, detail: `ovsdb-server ${this.stateValue} (${remote})` };
  }

  /** Starts connecting and monitoring in the background. Idempotent. */
  start(): void {
    this.session.start();
  }

  /** Stops reconnecting, closes the connection (pending requests reject with `OVSDB_CONNECTION_CLOSED`). */
  async close(): Promise<void> {
    await this.session.close();
  }

  on(event: 'change', listener: (change: ReplicaChange) => void): () => void;
  on(event: 'state', listener: (state: OvsdbClientState) => void): () => void;
  on(event: keyof Listeners, listener: ((change: ReplicaChange) => void) | ((state: OvsdbClientState) => void)): () => void {
    const list = this.listeners[event] as unknown[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** One transaction on `database`; see the class contract for outcomes. */
  transact(operations: readonly Operation[], options: TransactOptions = {}): Promise<OperationResult[]> {
    const conn = this.session.connection;
    if (conn === undefined || !conn.isOpen) {
      const err = new OvsdbError('OVSDB_NOT_CONNECTED', `transact: not connected to ${formatRemote(this.remote)}`);
      this.transactions[transactionOutcome(err)]++;
      return Promise.reject(err);
    }
    const ops = options.comment === undefined ? operations : [...operations, commentOp(options.comment)];
    let reply: Promise<unknown>;
    try {
      reply = conn.request('transact', [this.database, ...ops], { timeoutMs: options.timeoutMs ?? this.requestTimeoutMs });
    } catch (err) {
      // Counted by `settle`, and rejected with the same reason, as when this was one async function.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      reply = Promise.reject(err);
    }
    return this.settle(reply, ops.length, operations.length);
  }

  /**
   * The awaiting half of `transact`, split off so that only the counts live across the await: a
   * suspended async function keeps its parameters and locals, and the operations of a 6000-row pass
   * (~8 MB of objects) stayed reachable until the reply and were promoted to the old generation (heap
   * snapshot, stress-2ms).
   */
  private async settle(reply: Promise<unknown>, sent: number, wanted: number): Promise<OperationResult[]> {
    try {
      const parsed = parseTransactResult(sent, await reply);
      this.transactions.committed++;
      return parsed.slice(0, wanted);
    } catch (err) {
      this.transactions[transactionOutcome(err)]++;
      throw err;
    }
  }

  private onPhase(phase: SessionPhase): void {
    if (phase !== 'monitoring') this.replica.invalidate();
    const state: OvsdbClientState =
      phase === 'monitoring' ? 'monitoring' : phase === 'connecting' || phase === 'connected' ? 'connecting' : 'disconnected';
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  private emit(event: 'change', value: ReplicaChange): void;
  private emit(event: 'state', value: OvsdbClientState): void;
  private emit(event: keyof Listeners, value: unknown): void {
    for (const listener of [...(this.listeners[event] as ((v: unknown) => void)[])]) {
      try {
        listener(value);
      } catch (err) {
        this.log.error({ err: describeError(err), event }, 'ovsdb: a client listener threw');
      }
    }
  }
}
