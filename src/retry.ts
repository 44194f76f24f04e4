import { CodedError } from './errors.js';
import { XapiError } from './xapi/errors.js';

/**
 * The one place that decides whether a failure is worth retrying. Callers (OVSDB reconnect, XAPI
 * session, the reconcile loop) ask here instead of inspecting errors themselves.
 *
 * Transient: the peer is away, slow or restarting, or said "try again". Permanent: our request is
 * wrong (config, syntax, schema) and repeating it would only repeat the failure.
 */
const TRANSIENT_CODES = new Set<string>([
  'OVSDB_NOT_CONNECTED',
  'OVSDB_CONNECTION_CLOSED',
  'OVSDB_TIMEOUT',
  'OVSDB_PROTOCOL',
  'OVSDB_MESSAGE_TOO_LARGE',
  'OVSDB_REPLICA_INCONSISTENT',
  'XAPI_TRANSPORT',
  'XAPI_TIMEOUT',
  'XAPI_PROTOCOL',
  'XAPI_RESPONSE_TOO_LARGE',
]);

/**
 * XAPI error codes that mean "the server cannot serve this right now" (reference/xapi.md §1.2:
 * emergency mode during boot or while the master is unreachable).
 */
const TRANSIENT_XAPI_CODES = new Set<string>([
  'HOST_STILL_BOOTING',
  'HOST_HAS_NO_MANAGEMENT_IP',
  'HOST_UNKNOWN_TO_MASTER',
  'HOST_MASTER_CANNOT_TALK_BACK',
  'TOO_BUSY',
  'EVENTS_LOST',
]);

/**
 * In-band OVSDB operation errors that a fresh attempt can cure (RFC 7047 §4.1.3): a `wait` whose
 * precondition failed ("timed out"), a transaction cancelled, or a server out of resources.
 */
const TRANSIENT_OVSDB_OPERATION_ERRORS = new Set<string>(['timed out', 'canceled', 'resources exhausted', 'I/O error']);

export function isTransient(err: unknown): boolean {
  if (err instanceof XapiError) return TRANSIENT_XAPI_CODES.has(err.code);
  if (!(err instanceof CodedError)) {
    // Node socket errors that escaped a transport wrapper are transient by nature.
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' && /^E(CONNREFUSED|CONNRESET|PIPE|NOENT|TIMEDOUT|HOSTUNREACH|NETUNREACH|AI_AGAIN)$/.test(code);
  }
  const code: string = (err as CodedError<string>).code;
  if (TRANSIENT_CODES.has(code)) return true;
  if (code === 'XAPI_HTTP') {
    const status = (err as CodedError<string> & { status?: number }).status;
    return status === undefined || status >= 500;
  }
  if (code === 'OVSDB_OPERATION') {
    const error = (err as CodedError<string> & { error?: string }).error;
    return error !== undefined && TRANSIENT_OVSDB_OPERATION_ERRORS.has(error);
  }
  return false;
}

export { Backoff, backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './time/backoff.js';
