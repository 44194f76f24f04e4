import { describe, expect, it } from 'vitest';
import {
  DateTime,
  decodeJsonCall,
  decodeXmlCall,
  Double,
  encodeJsonFailure,
  encodeJsonSuccess,
  encodeXmlBare,
  encodeXmlFailure,
  encodeXmlSuccess,
  encodeXmlValue,
  formatG,
  formatJsonFloat,
  Int32,
  WireParseError,
} from '../../../src/sim/wire/index.js';

/*
 * Expected bytes are what mirage/ocaml-rpc would emit, reasoned from its source: src/lib/xmlrpc.ml
 * (add_value with strict=false, encode_buf, add_response) and src/lib/jsonrpc.ml (rpc_to_json,
 * json_of_response) with Yojson.Safe.to_string; xapi's error shapes from ocaml/xapi/api_server.ml.
 */
const HEAD = '<?xml version="1.0"?><methodResponse><params><param>';
const TAIL = '</param></params></methodResponse>';

describe('XML-RPC encoder (ocaml-rpc xmlrpc.ml, strict=false)', () => {
  const values: [string, Parameters<typeof encodeXmlValue>[0], string][] = [
    ['a string: no <string> tag', 'xenbr0', '<value>xenbr0</value>'],
    ['an empty string', '', '<value></value>'],
    ['an int64: bare digits', 1500, '<value>1500</value>'],
    ['a negative int', -1, '<value>-1</value>'],
    ['an Int32', new Int32(42), '<value><i4>42</i4></value>'],
    ['a bool', true, '<value><boolean>1</boolean></value>'],
    ['a double 1.0 (%.16g)', new Double(1), '<value><double>1</double></value>'],
    ['a double 0.1', new Double(0.1), '<value><double>0.1</double></value>'],
    ['a small double', new Double(1.5e-7), '<value><double>1.5e-07</double></value>'],
    ['a large double', new Double(1e20), '<value><double>1e+20</double></value>'],
    ['a datetime', new DateTime('20250319T04:16:24Z'), '<value><dateTime.iso8601>20250319T04:16:24Z</dateTime.iso8601></value>'],
    ['nil', null, '<value><nil/></value>'],
    ['an empty set', [], '<value><array><data></data></array></value>'],
    ['an empty map', {}, '<value><struct></struct></value>'],
    ['string escaping: > < & " as entities, C0 controls but TAB/LF/CR dropped, UTF-8 raw', 'a"b>c<d&e\u0001f\tg\u007fé', '<value>a&quot;b&gt;c&lt;d&amp;e' + 'f\tg\u007fé</value>'],
    ['struct member names NOT escaped', { 'a&b': '1', 'a<b': 'x<y' }, '<value><struct><member><name>a&b</name><value>1</value></member><member><name>a<b</name><value>x&lt;y</value></member></struct></value>'],
    ['a set of refs', ['OpaqueRef:a', 'OpaqueRef:b'], '<value><array><data><value>OpaqueRef:a</value><value>OpaqueRef:b</value></data></array></value>'],
  ];
  it.each(values)('%s', (_what, v, bytes) => {
    expect(encodeXmlValue(v)).toBe(bytes);
  });

  it('a pool member re-encoding a forwarded answer writes Int32 bare (its parser read <i4> as Rpc.Int)', () => {
    expect(encodeXmlValue({ vm: new Int32(3) }, { forwarded: true })).toBe('<value><struct><member><name>vm</name><value>3</value></member></struct></value>');
  });

  it('wraps success, failure and the bare system.listMethods answer as xapi does', () => {
    expect(encodeXmlSuccess('OpaqueRef:s')).toBe(`${HEAD}<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>OpaqueRef:s</value></member></struct></value>${TAIL}`);
    expect(encodeXmlFailure('SESSION_INVALID', ['OpaqueRef:s'])).toBe(
      `${HEAD}<value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>SESSION_INVALID</value><value>OpaqueRef:s</value></data></array></value></member></struct></value>${TAIL}`,
    );
    expect(encodeXmlBare(['a.b'])).toBe(`${HEAD}<value><array><data><value>a.b</value></data></array></value>${TAIL}`);
  });

  it('formats like OCaml %.16g / %.17g', () => {
    expect([formatG(1, 16), formatG(0.5, 16), formatG(1.2345678901234568e17, 16), formatG(1e-5, 16), formatG(0, 16)]).toStrictEqual(['1', '0.5', '1.234567890123457e+17', '1e-05', '0']);
  });
});

describe('XML-RPC request decoder', () => {
  it('reads typed and untyped values, entities, whitespace between tags', () => {
    const body = `<?xml version="1.0"?>\n<methodCall>\n <methodName>event.from</methodName>\n <params>\n  <param><value><string>OpaqueRef:s</string></value></param>\n  <param><value><array><data><value>vm</value><value><string/></value></data></array></value></param>\n  <param><value>a&amp;b&lt;&#x41;&#66;</value></param>\n  <param><value><double>30.5</double></value></param>\n  <param><value><i4>7</i4></value></param>\n  <param><value><boolean>1</boolean></value></param>\n  <param><value><struct><member><name>k</name><value>v</value></member></struct></value></param>\n </params>\n</methodCall>\n`;
    expect(decodeXmlCall(body)).toStrictEqual({ method: 'event.from', params: ['OpaqueRef:s', ['vm', ''], 'a&b<AB', 30.5, 7, true, { k: 'v' }] });
  });
  it.each([
    ['no <params> (xapi: HTTP 500)', '<methodCall><methodName>x</methodName></methodCall>'],
    ['not XML', 'hello'],
    ['an unknown value type', '<methodCall><methodName>x</methodName><params><param><value><foo>1</foo></value></param></params></methodCall>'],
    ['a bad int', '<methodCall><methodName>x</methodName><params><param><value><int>1.5</int></value></param></params></methodCall>'],
  ])('refuses %s', (_what, body) => {
    expect(() => decodeXmlCall(body)).toThrow(WireParseError);
  });
});

describe('JSON-RPC (ocaml-rpc jsonrpc.ml + Yojson.Safe.to_string; xapi api_server.ml error shapes)', () => {
  it('encodes values with Yojson forms: int literals, floats always with . or e, datetimes as strings', () => {
    const v = { 'a&b': '1', n: 1500, f: new Double(1), g: new Double(0.1), big: new Double(1e20), d: new DateTime('19700101T00:00:00Z'), c: new Int32(3), b: false, s: [], m: {} };
    expect(encodeJsonSuccess(v, { id: 7, version: 'V1' })).toBe('{"result":{"a&b":"1","n":1500,"f":1.0,"g":0.1,"big":1e+20,"d":"19700101T00:00:00Z","c":3,"b":false,"s":[],"m":{}},"error":null,"id":7}');
    expect(encodeJsonSuccess('x', { id: 'abc', version: 'V2' })).toBe('{"jsonrpc":"2.0","result":"x","id":"abc"}');
  });
  it('escapes strings as Yojson: short escapes, other controls and DEL as \\u00xx, "/" and UTF-8 raw', () => {
    expect(encodeJsonSuccess('"\\\b\f\n\r\t\u0001\u007f/é', { id: 0, version: 'V1' })).toBe('{"result":"\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u007f/é","error":null,"id":0}');
    expect(formatJsonFloat(2.5)).toBe('2.5');
  });
  it('shapes failures by version and by where xapi raised them', () => {
    const call = { id: 'q', version: 'V2' as const };
    expect(encodeJsonFailure('SESSION_INVALID', ['OpaqueRef:s'], { id: 1, version: 'V1' })).toBe('{"result":null,"error":["SESSION_INVALID","OpaqueRef:s"],"id":1}');
    expect(encodeJsonFailure('SESSION_INVALID', ['OpaqueRef:s'], call)).toBe('{"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:s"]},"id":"q"}');
    expect(encodeJsonFailure('SESSION_INVALID', ['OpaqueRef:s'], call, 'forwarded')).toBe('{"jsonrpc":"2.0","error":["SESSION_INVALID","OpaqueRef:s"],"id":"q"}');
    expect(encodeJsonFailure('HOST_STILL_BOOTING', [], call, 'outside')).toBe('{"jsonrpc":"2.0","error":["HOST_STILL_BOOTING"],"id":0}');
  });
  it('decodes requests as version_id_and_call_of_string does', () => {
    expect(decodeJsonCall('{"method":"a.b","params":["x",1],"id":3}')).toStrictEqual({ method: 'a.b', params: ['x', 1], id: 3, version: 'V1' });
    expect(decodeJsonCall('{"jsonrpc":"2.0","method":"a.b","id":"i"}')).toStrictEqual({ method: 'a.b', params: [], id: 'i', version: 'V2' });
    expect(decodeJsonCall('{"jsonrpc":"2.0","method":"a.b","params":{"k":"v"},"id":1}').params).toStrictEqual([{ k: 'v' }]);
    const proto = decodeJsonCall('{"method":"a","params":[{"__proto__":"x"}],"id":1}').params[0] as Record<string, unknown>;
    expect(Object.keys(proto)).toStrictEqual(['__proto__']);
  });
  it.each([
    ['V1 without params', '{"method":"a","id":1}'],
    ['no id (a notification)', '{"method":"a","params":[]}'],
    ['a null id', '{"method":"a","params":[],"id":null}'],
    ['a float id', '{"method":"a","params":[],"id":1.5}'],
    ['jsonrpc 1.0', '{"jsonrpc":"1.0","method":"a","params":[],"id":1}'],
    ['no method', '{"params":[],"id":1}'],
    ['not JSON', '{'],
  ])('refuses %s', (_what, body) => {
    expect(() => decodeJsonCall(body)).toThrow(WireParseError);
  });
});
