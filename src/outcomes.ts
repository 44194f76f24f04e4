/**
 * The one mapping from what happened to a call to the outcome label the metrics count it under. Both
 * the OVSDB client's own counters and `ovs_xapi_sync_ovsdb_transactions_total{result}` use
 * `transactionOutcome`; `ovs_xapi_sync_xapi_calls_total{outcome}` uses `xapiCallOutcome`. Keyed on the
 * stable error codes of `errors.ts`, never on classes or message text.
 */

/**
 * Outcome of one OVSDB `transact` (RFC 7047 §4.1.3): `committed`; an in-band operation or commit error
 * (`operation_error`, including a failed `wait`); a JSON-RPC error reply (`rpc_error`); no reply in time
 * (`timeout`); a reply that is not a transact result (`protocol_error`: the server answered, so the
 * connection was not lost); or no reply because the connection was down or dropped with the request
 * pending (`connection_lost`).
 */
export type TransactionOutcome = 'committed' | 'operation_error' | 'rpc_error' | 'timeout' | 'protocol_error' | 'connection_lost';
export const TRANSACTION_OUTCOMES: readonly TransactionOutcome[] = [
  'committed',
  'operation_error',
  'rpc_error',
  'timeout',
  'protocol_error',
  'connection_lost',
];

/** `error` undefined: the transaction committed. */
export function transactionOutcome(error?: unknown): TransactionOutcome {
  if (error === undefined) return 'committed';
  switch (codeOf(error)) {
    case 'OVSDB_OPERATION':
      return 'operation_error';
    case 'OVSDB_RPC_ERROR':
      return 'rpc_error';
    case 'OVSDB_TIMEOUT':
      return 'timeout';
    case 'OVSDB_PROTOCOL':
      return 'protocol_error';
    default:
      return 'connection_lost';
  }
}

/**
 * Outcome of one XAPI call: `success` (Status=Success), `failure` (Status=Failure with an XAPI error
 * code, counted separately by code), `transport_error` (connect/HTTP/protocol failure: one of our
 * `XAPI_*` codes), `timeout`.
 */
export type XapiCallOutcome = 'success' | 'failure' | 'transport_error' | 'timeout';
export const XAPI_CALL_OUTCOMES: readonly XapiCallOutcome[] = ['success', 'failure', 'transport_error', 'timeout'];

/** `result`: `ok`, or the failed call's error code (what the XAPI session reports per call). */
export function xapiCallOutcome(result: string): XapiCallOutcome {
  if (result === 'ok') return 'success';
  if (result === 'XAPI_TIMEOUT') return 'timeout';
  if (result.startsWith('XAPI_')) return 'transport_error';
  return 'failure';
}

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}
