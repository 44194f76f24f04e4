import { CodedError } from './errors.js';

/** Node socket error codes: a connection that failed or dropped, which a later attempt can cure. */
const TRANSIENT_SOCKET_CODES = /^E(CONNREFUSED|CONNRESET|PIPE|NOENT|TIMEDOUT|HOSTUNREACH|NETUNREACH|AI_AGAIN)$/;

/**
 * The one place that decides whether a failure is worth retrying. Callers (OVSDB reconnect, XAPI
 * session, the reconcile scheduler) ask here instead of inspecting errors themselves.
 *
 * A `CodedError` says so itself (`transient`, set by each error class from its code). A Node socket
 * error that escaped a transport wrapper is transient by nature; anything else is not.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof CodedError) return err.transient;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_SOCKET_CODES.test(code);
}
