/**
 * Typed errors with stable codes. Every error the daemon raises or surfaces carries one of the codes
 * below; logs, metrics and the retry policy (`retry.ts`) key on `code`, never on message text.
 */
export type ErrorCode =
  // OVSDB (src/ovsdb)
  | 'OVSDB_REMOTE_INVALID' // a remote string we cannot parse or do not support (ssl:)
  | 'OVSDB_NOT_CONNECTED' // a request made while no connection is up
  | 'OVSDB_CONNECTION_CLOSED' // the connection dropped with the request pending
  | 'OVSDB_TIMEOUT' // no reply within the per-request timeout, or echo probe unanswered
  | 'OVSDB_PROTOCOL' // malformed JSON or a message that is not JSON-RPC 1.0
  | 'OVSDB_MESSAGE_TOO_LARGE' // one incoming message exceeded the size cap
  | 'OVSDB_RPC_ERROR' // a JSON-RPC error reply (RFC 7047 §4: request-level failure)
  | 'OVSDB_OPERATION' // an in-band operation or commit error (RFC 7047 §4.1.3)
  | 'OVSDB_REPLICA_INCONSISTENT' // an update that does not fit the replica (see docs/ovsdb.md §8)
  | 'OVSDB_SANDBOX' // the private ovsdb-server sandbox (tests, demo, bench) could not be started or driven
  // XAPI (src/xapi)
  | 'XAPI_URL_INVALID' // an XAPI URL we cannot parse
  | 'XAPI_TRANSPORT' // connect refused, reset, socket missing
  | 'XAPI_TIMEOUT' // no complete reply within the per-call timeout
  | 'XAPI_HTTP' // a non-200 HTTP status
  | 'XAPI_PROTOCOL' // malformed XML/JSON, wrong content type, unexpected shape
  | 'XAPI_RESPONSE_TOO_LARGE' // reply body over the size cap
  | 'XAPI_REQUEST_TOO_LARGE' // an encoded call over XAPI's 300 KiB request cap (permanent)
  // Daemon
  | 'CONFIG_INVALID'
  | 'PIDFILE_LOCKED' // another live process holds the pidfile's fcntl lock (a second instance)
  | 'PIDFILE' // the pidfile could not be created, locked or removed
  | 'PIDFILE_NO_LOCKING' // the fcntl addon cannot be loaded (e.g. built for a newer glibc than dom0's)
  | 'CONTROL_SOCKET' // the ovs-appctl control socket could not be created (path in use, not a socket)
  | 'HEALTH_LISTEN' // the health endpoint could not bind its address (in use, bad host)
  | 'ABORTED'
  // Reconciler (src/reconcile)
  | 'RECONCILE_INVARIANT'; // the rules produced an intent for a field the daemon does not own (a bug)

/**
 * Base class: a message for humans, a stable `code` for machines, and an optional `cause`.
 * `C` is widened only by `XapiError`, whose code is XAPI's own stable error code (`SESSION_INVALID`…).
 */
export class CodedError<C extends string = ErrorCode> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /**
   * Whether a fresh attempt may succeed: the peer is away, slow or restarting, or said "try again".
   * False for a request that is wrong (config, syntax, schema), which repeating would only repeat.
   * Each error class decides from its own code; `isTransient` (retry.ts) is the one reader.
   */
  get transient(): boolean {
    return false;
  }
}

export function isCodedError(err: unknown): err is CodedError<string> {
  return err instanceof CodedError;
}

/** Thrown (or used as an AbortSignal reason) when shutdown abandons an operation. */
export class AbortedError extends CodedError {
  constructor(message = 'aborted') {
    super('ABORTED', message);
  }
}

/** A one-line description of any thrown value, for logs and status output. */
export function describeError(err: unknown): string {
  if (err instanceof CodedError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
