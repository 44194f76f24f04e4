import { describe, expect, it } from 'vitest';
import { CodedError } from '../../../src/errors.js';
import { OvsdbError, OvsdbOperationError, OvsdbRpcError } from '../../../src/ovsdb/errors.js';
import { TRANSACTION_OUTCOMES, transactionOutcome, xapiCallOutcome } from '../../../src/outcomes.js';

describe('transactionOutcome: the one mapping from a transact error to its metric label', () => {
  it.each([
    ['committed (no error)', undefined, 'committed'],
    ['an in-band operation error', new OvsdbOperationError('constraint violation', undefined, 0, false), 'operation_error'],
    ['a JSON-RPC error reply', new OvsdbRpcError('transact', 'unknown database'), 'rpc_error'],
    ['no reply in time', new OvsdbError('OVSDB_TIMEOUT', 'x'), 'timeout'],
    // The server answered with something that is not a transact result: the connection was not lost.
    ['a malformed reply', new OvsdbError('OVSDB_PROTOCOL', 'transact: result is not an array'), 'protocol_error'],
    ['the connection dropped with the request pending', new OvsdbError('OVSDB_CONNECTION_CLOSED', 'x'), 'connection_lost'],
    ['not connected', new OvsdbError('OVSDB_NOT_CONNECTED', 'x'), 'connection_lost'],
    ['anything else', new Error('boom'), 'connection_lost'],
  ] as const)('%s', (_name, error, label) => {
    expect(transactionOutcome(error)).toBe(label);
    expect(TRANSACTION_OUTCOMES).toContain(label);
  });
});

describe('xapiCallOutcome', () => {
  it.each([
    ['ok', 'success'],
    ['XAPI_TIMEOUT', 'timeout'],
    ['XAPI_TRANSPORT', 'transport_error'],
    ['XAPI_HTTP', 'transport_error'],
    ['HANDLE_INVALID', 'failure'],
    ['SESSION_INVALID', 'failure'],
  ] as const)('%s → %s', (result, label) => {
    expect(xapiCallOutcome(result)).toBe(label);
  });

  it('keys on the code the session reports, whatever the error class', () => {
    expect(xapiCallOutcome(new CodedError('XAPI_REQUEST_TOO_LARGE', 'x').code)).toBe('transport_error');
  });
});
