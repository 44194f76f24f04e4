import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XapiError, XapiTransportError } from '../../../src/xapi/errors.js';
import type { XapiCall, XapiValue } from '../../../src/xapi/codec/types.js';
import { jsonRpcCodec } from '../../../src/xapi/codec/jsonrpc.js';
import { xmlRpcCodec } from '../../../src/xapi/codec/xmlrpc.js';
import { XAPI_MAX_REQUEST_BYTES } from '../../../src/xapi/codec/limits.js';
import { thrown } from '../../helpers/thrown.js';


describe('jsonRpcCodec.decodeResponse: every reply shape of docs/xapi.md §1.4', () => {
  const ok: [string, string, XapiValue][] = [
    ['V2 success', '{"jsonrpc":"2.0","result":"OpaqueRef:a","id":0}', 'OpaqueRef:a'],
    ['V2 success, ints are numbers', '{"jsonrpc":"2.0","result":{"MTU":1500,"currently_attached":true},"id":"x"}', { MTU: 1500, currently_attached: true }],
    ['V2 void result', '{"jsonrpc":"2.0","result":"","id":1}', ''],
    ['V1 success', '{"result":["a"],"error":null,"id":3}', ['a']],
    ['V1 null result', '{"result":null,"error":null,"id":3}', null],
  ];
  it.each(ok)('%s', (_name, body, expected) => {
    expect(jsonRpcCodec.decodeResponse(body, 'm')).toStrictEqual(expected);
  });

  const failures: [string, string, string, string[]][] = [
    ['V2 error object', '{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:s"]},"id":0}', 'SESSION_INVALID', ['OpaqueRef:s']],
    ['V2 error object without data', '{"jsonrpc":"2.0","error":{"code":1,"message":"X"},"id":0}', 'X', []],
    ['odd V2 array error (HOST_STILL_BOOTING)', '{"jsonrpc":"2.0","error":["HOST_STILL_BOOTING"],"id":0}', 'HOST_STILL_BOOTING', []],
    ['V1 failure', '{"result":null,"error":["UUID_INVALID","VM","u"],"id":7}', 'UUID_INVALID', ['VM', 'u']],
  ];
  it.each(failures)('%s', (_name, body, code, params) => {
    const err = thrown(() => jsonRpcCodec.decodeResponse(body, 'VM.get_by_uuid'));
    expect(err).toBeInstanceOf(XapiError);
    expect(err).toMatchObject({ code, params, method: 'VM.get_by_uuid' });
  });

  const malformed: [string, string][] = [
    ['empty', ''],
    ['not JSON', '<html>'],
    ['truncated', '{"jsonrpc":"2.0","result":'],
    ['array', '[1]'],
    ['scalar', '42'],
    ['neither result nor error', '{"jsonrpc":"2.0","id":0}'],
    ['error object with non-string message', '{"jsonrpc":"2.0","error":{"code":1,"message":5},"id":0}'],
    ['empty error array', '{"jsonrpc":"2.0","error":[],"id":0}'],
  ];
  it.each(malformed)('malformed: %s → XAPI_PROTOCOL', (_name, body) => {
    const err = thrown(() => jsonRpcCodec.decodeResponse(body, 'm'));
    expect(err).toBeInstanceOf(XapiTransportError);
    expect((err as XapiTransportError).code).toBe('XAPI_PROTOCOL');
  });

  it('a __proto__ member stays an own property', () => {
    const v = jsonRpcCodec.decodeResponse('{"jsonrpc":"2.0","result":{"__proto__":{"polluted":1}},"id":0}', 'm');
    expect(Object.hasOwn(v as object, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('jsonRpcCodec client encoding', () => {
  it('sends JSON-RPC 2.0 with the given id', () => {
    expect(JSON.parse(jsonRpcCodec.encodeCall('VM.get_all', ['OpaqueRef:s'], 5))).toStrictEqual({
      jsonrpc: '2.0',
      id: 5,
      method: 'VM.get_all',
      params: ['OpaqueRef:s'],
    });
  });
  it('refuses a body over the 300 KiB cap', () => {
    expect(thrown(() => jsonRpcCodec.encodeCall('m', ['x'.repeat(XAPI_MAX_REQUEST_BYTES)], 0))).toMatchObject({ code: 'XAPI_REQUEST_TOO_LARGE' });
  });
});

describe('jsonRpcCodec server side', () => {
  const calls: [string, string, XapiCall][] = [
    ['V2 array params', '{"jsonrpc":"2.0","method":"a.b","params":[1,"x"],"id":4}', { method: 'a.b', params: [1, 'x'], id: 4, version: '2.0' }],
    ['V2 missing params', '{"jsonrpc":"2.0","method":"a.b","id":"s"}', { method: 'a.b', params: [], id: 's', version: '2.0' }],
    ['V2 null params', '{"jsonrpc":"2.0","method":"a.b","params":null,"id":1}', { method: 'a.b', params: [], id: 1, version: '2.0' }],
    ['V2 object params → one struct', '{"jsonrpc":"2.0","method":"a.b","params":{"k":"v"},"id":1}', { method: 'a.b', params: [{ k: 'v' }], id: 1, version: '2.0' }],
    ['V1', '{"method":"a.b","params":["x"],"id":9}', { method: 'a.b', params: ['x'], id: 9, version: '1.0' }],
  ];
  it.each(calls)('decodeCall %s', (_name, body, expected) => {
    expect(jsonRpcCodec.decodeCall(body)).toStrictEqual(expected);
  });

  const badCalls: [string, string][] = [
    ['missing id', '{"jsonrpc":"2.0","method":"a.b","params":[]}'],
    ['null id', '{"jsonrpc":"2.0","method":"a.b","params":[],"id":null}'],
    ['float id', '{"jsonrpc":"2.0","method":"a.b","params":[],"id":1.5}'],
    ['V1 without params', '{"method":"a.b","id":1}'],
    ['V1 object params', '{"method":"a.b","params":{},"id":1}'],
    ['bad version', '{"jsonrpc":"1.0","method":"a.b","params":[],"id":1}'],
    ['no method', '{"jsonrpc":"2.0","params":[],"id":1}'],
    ['V2 scalar params', '{"jsonrpc":"2.0","method":"a.b","params":3,"id":1}'],
    ['not JSON', 'nope'],
  ];
  it.each(badCalls)('decodeCall rejects %s', (_name, body) => {
    expect(thrown(() => jsonRpcCodec.decodeCall(body))).toMatchObject({ code: 'XAPI_PROTOCOL' });
  });

  it('answers in the request version with its id, in XAPI\'s exact shapes', () => {
    const v1: XapiCall = { method: 'm', params: [], id: 'a', version: '1.0' };
    const v2: XapiCall = { method: 'm', params: [], id: 7, version: '2.0' };
    expect(jsonRpcCodec.encodeSuccess('r', v1)).toBe('{"result":"r","error":null,"id":"a"}');
    expect(jsonRpcCodec.encodeFailure('E', ['p'], v1)).toBe('{"result":null,"error":["E","p"],"id":"a"}');
    expect(jsonRpcCodec.encodeSuccess('r', v2)).toBe('{"jsonrpc":"2.0","result":"r","id":7}');
    expect(jsonRpcCodec.encodeFailure('E', ['p'], v2)).toBe('{"jsonrpc":"2.0","error":{"code":1,"message":"E","data":["p"]},"id":7}');
    expect(jsonRpcCodec.encodeFailure('HOST_STILL_BOOTING', [])).toBe('{"jsonrpc":"2.0","error":["HOST_STILL_BOOTING"],"id":0}');
  });
});

const text = fc.string({ unit: 'grapheme' });
const value: fc.Arbitrary<XapiValue> = fc.letrec<{ v: XapiValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    text,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(text, tie('v'), { maxKeys: 4, noNullPrototype: true }),
  ),
})).v;

describe('jsonRpcCodec round trip (property)', () => {
  it('server encode → client decode, both versions', () => {
    fc.assert(
      fc.property(value, fc.constantFrom<'1.0' | '2.0'>('1.0', '2.0'), (v, version) => {
        expect(jsonRpcCodec.decodeResponse(jsonRpcCodec.encodeSuccess(v, { method: 'm', params: [], id: 1, version }), 'm')).toStrictEqual(v);
      }),
    );
  });

  it('both codecs agree on the same XAPI data, except ints (strings in XML-RPC)', () => {
    const record = { uuid: 'u', device: '0', MTU: 1500, currently_attached: true, other_config: { k: 'v' }, ipv4_allowed: [] };
    const viaJson = jsonRpcCodec.decodeResponse(jsonRpcCodec.encodeSuccess(record), 'm');
    const viaXml = xmlRpcCodec.decodeResponse(xmlRpcCodec.encodeSuccess(record), 'm');
    expect(viaJson).toStrictEqual(record);
    expect(viaXml).toStrictEqual({ ...record, MTU: '1500' });
  });
});
