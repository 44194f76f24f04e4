import { connect as netConnect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { OvsdbError, OvsdbRpcError } from './errors.js';
import { JsonMessageSplitter } from './framing.js';
import { connectOptions, formatRemote, type OvsdbRemote } from './remote.js';
import { realClock, type Clock } from '../time/clock.js';

export const DEFAULT_PROBE_INTERVAL_MS = 5000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface ConnectionOptions {
  readonly logger: Logger;
  /**
   * Idle time after which we send our own echo probe; no message within one more interval drops the
   * connection. Also used on unix sockets, where ovsdb-server never probes (docs/ovsdb.md §1).
   * 0 disables probing.
   */
  readonly probeIntervalMs?: number;
  /** Default per-request timeout; 0 = none. */
  readonly requestTimeoutMs?: number;
  readonly maxMessageBytes?: number;
  readonly clock?: Clock;
}

export type NotificationHandler = (method: string, params: unknown) => void;

interface Pending {
  readonly method: string;
  readonly resolve: (result: unknown) => void;
  readonly reject: (err: unknown) => void;
  timer: unknown;
}

/**
 * One JSON-RPC 1.0 session on one socket, as ovsdb-server speaks it (docs/ovsdb.md §1):
 * - requests carry numeric ids; never a `jsonrpc` member (the server drops the connection for it);
 * - the server's `{"id":"echo","method":"echo"}` is answered with its params; no other reply is ever sent
 *   unasked (an unsolicited reply is fatal to the server session);
 * - error replies have `result` absent and reject with `OvsdbRpcError` (`OVSDB_RPC_ERROR`);
 * - notifications (`update2`, `update3`…) go to the handlers in arrival order, synchronously;
 * - a malformed or oversized message, an unanswered probe or a socket error closes the connection; every
 *   pending request is then rejected with `OVSDB_CONNECTION_CLOSED` (its `cause` is the reason).
 * The connection never reconnects: `OvsdbSession` does that. `closed` resolves (never rejects) with the
 * reason once the socket is gone.
 */
export class OvsdbConnection {
  readonly closed: Promise<OvsdbError>;
  private readonly socket: Socket;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly probeIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly splitter: JsonMessageSplitter;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers: NotificationHandler[] = [];
  private nextId = 1;
  private closeReason: OvsdbError | undefined;
  private resolveClosed!: (reason: OvsdbError) => void;
  private lastActivity: number;
  private probeSentAt: number | undefined;
  private probeTimer: unknown;

  constructor(socket: Socket, options: ConnectionOptions) {
    this.socket = socket;
    this.log = options.logger;
    this.clock = options.clock ?? realClock;
    this.probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.splitter = new JsonMessageSplitter({ maxMessageBytes: options.maxMessageBytes });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.lastActivity = this.clock.now();
    socket.on('data', (chunk: Buffer) => {
      this.onData(chunk);
    });
    socket.on('error', (err) => {
      this.shutdown(new OvsdbError('OVSDB_CONNECTION_CLOSED', `socket error: ${err.message}`, { cause: err }));
    });
    socket.on('close', () => {
      this.shutdown(new OvsdbError('OVSDB_CONNECTION_CLOSED', 'connection closed by the server'));
    });
    socket.on('end', () => {
      // The server half-closed; we have nothing more to say either.
      socket.end();
    });
    this.scheduleProbe(this.probeIntervalMs);
  }

  /**
   * Connects to `remote`. Rejects with `OVSDB_CONNECTION_CLOSED` (cause: the socket error) when the
   * server is not there, `OVSDB_TIMEOUT` when the connect takes longer than the request timeout, and
   * `ABORTED`-free: an aborted `signal` rejects with `OVSDB_CONNECTION_CLOSED` too.
   */
  static connect(remote: OvsdbRemote, options: ConnectionOptions, signal?: AbortSignal): Promise<OvsdbConnection> {
    const clock = options.clock ?? realClock;
    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = netConnect(connectOptions(remote));
      let timer: unknown;
      const fail = (err: OvsdbError): void => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const onError = (err: Error): void => {
        fail(new OvsdbError('OVSDB_CONNECTION_CLOSED', `cannot connect to ${formatRemote(remote)}: ${err.message}`, { cause: err }));
      };
      const onAbort = (): void => {
        fail(new OvsdbError('OVSDB_CONNECTION_CLOSED', `connect to ${formatRemote(remote)} aborted`));
      };
      const cleanup = (): void => {
        if (timer !== undefined) clock.clearTimeout(timer);
        socket.off('error', onError);
        signal?.removeEventListener('abort', onAbort);
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('error', onError);
      if (timeoutMs > 0) {
        timer = clock.setTimeout(() => {
          fail(new OvsdbError('OVSDB_TIMEOUT', `connect to ${formatRemote(remote)} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
      }
      socket.once('connect', () => {
        cleanup();
        socket.setNoDelay(true);
        resolve(new OvsdbConnection(socket, options));
      });
    });
  }

  get isOpen(): boolean {
    return this.closeReason === undefined;
  }

  /** Registers a notification handler; returns a function that removes it. */
  onNotification(handler: NotificationHandler): () => void {
    this.handlers.push(handler);
    return () => {
      const i = this.handlers.indexOf(handler);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }

  /**
   * Sends a request and resolves with its `result`. Rejects with `OvsdbRpcError` for an error reply,
   * `OVSDB_TIMEOUT` after `timeoutMs` (the connection stays up; a late reply is ignored),
   * `OVSDB_CONNECTION_CLOSED` when the connection drops first, `OVSDB_NOT_CONNECTED` when already closed.
   */
  request(method: string, params: readonly unknown[], options: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.closeReason !== undefined) {
      return Promise.reject(new OvsdbError('OVSDB_NOT_CONNECTED', `${method}: connection is closed (${this.closeReason.message})`));
    }
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    let entry: Pending | undefined;
    const reply = new Promise<unknown>((resolve, reject) => {
      entry = { method, resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        entry.timer = this.clock.setTimeout(() => {
          if (this.pending.delete(id)) {
            reject(new OvsdbError('OVSDB_TIMEOUT', `${method}: no reply within ${timeoutMs} ms`));
          }
        }, timeoutMs);
      }
      this.pending.set(id, entry);
    });
    // Sent outside the executor so that no closure (the timeout's shares its context) captures
    // `params`: a 6000-row transaction's operations (~8 MB of objects) otherwise stayed reachable from
    // the timer until the reply and were promoted to the old generation (heap snapshot, stress-2ms).
    try {
      this.send({ method, params, id });
    } catch (err) {
      // As before, when the send threw inside the executor: the promise rejects, the entry stays.
      entry?.reject(err);
    }
    return reply;
  }

  /** Closes the connection; pending requests are rejected with `OVSDB_CONNECTION_CLOSED`. Idempotent. */
  close(reason?: OvsdbError): void {
    this.shutdown(reason ?? new OvsdbError('OVSDB_CONNECTION_CLOSED', 'connection closed by the client'));
  }

  private send(message: Record<string, unknown>): void {
    // A write after the peer vanished surfaces as a socket 'error'/'close', which rejects what is pending.
    this.socket.write(JSON.stringify(message));
  }

  private onData(chunk: Buffer): void {
    if (this.closeReason !== undefined) return;
    this.lastActivity = this.clock.now();
    let messages: Record<string, unknown>[];
    try {
      messages = this.splitter.push(chunk);
    } catch (err) {
      this.shutdown(err instanceof OvsdbError ? err : new OvsdbError('OVSDB_PROTOCOL', describeError(err), { cause: err }));
      return;
    }
    for (const message of messages) {
      // A message can close the connection (protocol error, inconsistent replica): drop the rest.
      if (!this.isOpen) return;
      this.dispatch(message);
    }
  }

  /** Classifies like ovsdb-server does: a member equal to null counts as absent (docs/ovsdb.md §1). */
  private dispatch(message: Record<string, unknown>): void {
    const method = message.method ?? null;
    const id = message.id ?? null;
    if (method !== null) {
      if (typeof method !== 'string') {
        this.shutdown(new OvsdbError('OVSDB_PROTOCOL', `"method" is not a string: ${JSON.stringify(method).slice(0, 80)}`));
        return;
      }
      const params = message.params ?? null;
      if (id !== null) {
        this.onRequest(id, method, params);
        return;
      }
      for (const handler of [...this.handlers]) {
        try {
          handler(method, params);
        } catch (err) {
          // A handler that cannot digest a notification (e.g. an inconsistent replica) ends the session.
          this.shutdown(err instanceof OvsdbError ? err : new OvsdbError('OVSDB_PROTOCOL', `${method}: ${describeError(err)}`, { cause: err }));
          return;
        }
      }
      return;
    }
    if (typeof id !== 'number') {
      this.log.debug({ id }, 'ovsdb: ignoring a reply to no request of ours');
      return;
    }
    const entry = this.pending.get(id);
    if (entry === undefined) {
      this.log.debug({ id }, 'ovsdb: ignoring a late or unknown reply');
      return;
    }
    this.pending.delete(id);
    if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
    const error = message.error ?? null;
    if (error !== null) entry.reject(new OvsdbRpcError(entry.method, error));
    else entry.resolve(message.result ?? null);
  }

  private onRequest(id: unknown, method: string, params: unknown): void {
    if (method === 'echo') {
      // RFC 7047 §4.1.11: the reply's result is the request's params.
      this.send({ id, result: Array.isArray(params) ? params : [], error: null });
      return;
    }
    // ovsdb-server sends no other request. Replying would be an unsolicited reply to a real server
    // (fatal, docs/ovsdb.md §1), so a misbehaving peer's request is logged and dropped.
    this.log.warn({ method }, 'ovsdb: ignoring an unexpected request from the server');
  }

  private scheduleProbe(delayMs: number): void {
    if (this.probeIntervalMs <= 0 || this.closeReason !== undefined) return;
    this.probeTimer = this.clock.setTimeout(() => {
      this.probeTimer = undefined;
      this.onProbeTimer();
    }, delayMs);
  }

  /**
   * Inactivity probe (RFC 7047 §4.1.11, docs/ovsdb.md §1): after `probeIntervalMs` without receiving
   * anything, send an echo; if nothing at all arrives within one more interval, the server is hung.
   */
  private onProbeTimer(): void {
    if (this.closeReason !== undefined) return;
    const now = this.clock.now();
    const interval = this.probeIntervalMs;
    if (this.probeSentAt !== undefined) {
      // `>=`: on a unix socket the echo reply often lands within the millisecond it was sent in. The
      // probe goes out only after a full idle interval, so any activity stamped at or after the send
      // time came after it.
      if (this.lastActivity >= this.probeSentAt) {
        this.probeSentAt = undefined;
      } else if (now - this.probeSentAt >= interval) {
        this.shutdown(new OvsdbError('OVSDB_TIMEOUT', `no reply to the echo probe within ${interval} ms`));
        return;
      } else {
        this.scheduleProbe(interval - (now - this.probeSentAt));
        return;
      }
    }
    const idle = now - this.lastActivity;
    if (idle < interval) {
      this.scheduleProbe(interval - idle);
      return;
    }
    this.probeSentAt = now;
    this.request('echo', ['ovs-xapi-sync probe'], { timeoutMs: 0 }).catch(() => {
      // Settled by the probe timer or by the close; nothing to do here.
    });
    this.scheduleProbe(interval);
  }

  private shutdown(reason: OvsdbError): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    if (this.probeTimer !== undefined) {
      this.clock.clearTimeout(this.probeTimer);
      this.probeTimer = undefined;
    }
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const entry of pending) {
      if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
      entry.reject(
        new OvsdbError('OVSDB_CONNECTION_CLOSED', `${entry.method}: connection lost before the reply (${describeError(reason)})`, {
          cause: reason,
        }),
      );
    }
    this.socket.destroy();
    this.resolveClosed(reason);
  }
}
