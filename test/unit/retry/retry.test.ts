import { describe, expect, it } from 'vitest';
import { AbortedError, CodedError } from '../../../src/errors.js';
import { OvsdbError, OvsdbOperationError, OvsdbRpcError } from '../../../src/ovsdb/errors.js';
import { isTransient } from '../../../src/retry.js';
import { XapiError, XapiTransportError } from '../../../src/xapi/errors.js';

describe('isTransient reads the flag each error class sets', () => {
  const cases: [string, unknown, boolean][] = [
    ['OVSDB_CONNECTION_CLOSED', new OvsdbError('OVSDB_CONNECTION_CLOSED', 'x'), true],
    ['OVSDB_NOT_CONNECTED', new OvsdbError('OVSDB_NOT_CONNECTED', 'x'), true],
    ['OVSDB_TIMEOUT', new OvsdbError('OVSDB_TIMEOUT', 'x'), true],
    ['OVSDB_PROTOCOL', new OvsdbError('OVSDB_PROTOCOL', 'x'), true],
    ['OVSDB_MESSAGE_TOO_LARGE', new OvsdbError('OVSDB_MESSAGE_TOO_LARGE', 'x'), true],
    ['OVSDB_REPLICA_INCONSISTENT', new OvsdbError('OVSDB_REPLICA_INCONSISTENT', 'x'), true],
    ['OVSDB_REMOTE_INVALID', new OvsdbError('OVSDB_REMOTE_INVALID', 'x'), false],
    ['OVSDB rpc error', new OvsdbRpcError('transact', 'unknown database'), false],
    ['operation "timed out"', new OvsdbOperationError('timed out', undefined, 0, false), true],
    ['operation "resources exhausted"', new OvsdbOperationError('resources exhausted', undefined, 0, false), true],
    ['operation "constraint violation"', new OvsdbOperationError('constraint violation', undefined, 0, false), false],
    ['XAPI HOST_STILL_BOOTING', new XapiError('HOST_STILL_BOOTING', [], 'VIF.get_record'), true],
    ['XAPI EVENTS_LOST', new XapiError('EVENTS_LOST', [], 'event.from'), true],
    ['XAPI UUID_INVALID', new XapiError('UUID_INVALID', ['VIF', 'x'], 'VIF.get_by_uuid'), false],
    ['XAPI SESSION_INVALID', new XapiError('SESSION_INVALID', [], 'event.from'), false],
    ['XAPI_TRANSPORT', new XapiTransportError('XAPI_TRANSPORT', 'x'), true],
    ['XAPI_TIMEOUT', new XapiTransportError('XAPI_TIMEOUT', 'x'), true],
    ['XAPI_PROTOCOL', new XapiTransportError('XAPI_PROTOCOL', 'x'), true],
    ['XAPI_RESPONSE_TOO_LARGE', new XapiTransportError('XAPI_RESPONSE_TOO_LARGE', 'x'), true],
    ['XAPI_URL_INVALID', new XapiTransportError('XAPI_URL_INVALID', 'x'), false],
    ['XAPI_HTTP 503', new XapiTransportError('XAPI_HTTP', 'x', { status: 503 }), true],
    ['XAPI_HTTP 404', new XapiTransportError('XAPI_HTTP', 'x', { status: 404 }), false],
    ['XAPI_REQUEST_TOO_LARGE', new CodedError('XAPI_REQUEST_TOO_LARGE', 'x'), false],
    ['CONFIG_INVALID', new CodedError('CONFIG_INVALID', 'x'), false],
    ['ABORTED', new AbortedError(), false],
    ['Node ECONNREFUSED', Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }), true],
    ['Node ENOENT', Object.assign(new Error('connect'), { code: 'ENOENT' }), true],
    ['Node EACCES', Object.assign(new Error('connect'), { code: 'EACCES' }), false],
    ['plain Error', new Error('boom'), false],
    ['null', null, false],
    ['string', 'ECONNRESET', false],
  ];
  it.each(cases)('%s', (_name, err, expected) => {
    expect(isTransient(err)).toBe(expected);
    if (err instanceof CodedError) expect(err.transient).toBe(expected);
  });
});
