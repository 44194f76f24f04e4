import { describe, expect, it } from 'vitest';
import { jsonRpcCodec } from '../../../src/xapi/codec/jsonrpc.js';
import type { XapiValue } from '../../../src/xapi/codec/types.js';
import { scanXmlRpcReply } from '../../../src/xapi/codec/xmlrpc-fast.js';
import { decodeXmlRpcResponse, decodeXmlRpcResponseReference } from '../../../src/xapi/codec/xmlrpc.js';
import { XapiError } from '../../../src/xapi/errors.js';
import { thrown } from '../../helpers/thrown.js';

/*
 * Replies written byte for byte as xapi writes them (mirage/ocaml-rpc src/lib/xmlrpc.ml:69-151,
 * src/lib/jsonrpc.ml:105-134; xapi-project/xen-api ocaml/xapi/api_server.ml:188-197), never through
 * our own encoder: the decoders are held to what xapi emits, not to what our simulator believes.
 */

const HEAD = '<?xml version="1.0"?><methodResponse><params><param>';
const TAIL = '</param></params></methodResponse>';
const success = (valueXml: string): string =>
  `${HEAD}<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>${valueXml}</member></struct></value>${TAIL}`;

/** `xe vif-param-set other-config:a&b=1 other-config:x<y>z='a&b<c' other-config:a&amp;b=2`: xapi writes keys raw, values escaped. */
const VIF_WITH_ODD_KEYS = success(
  '<value><struct><member><name>OpaqueRef:v1</name><value><struct>' +
    '<member><name>uuid</name><value>7f1c3b2a-0000-4000-8000-000000000001</value></member>' +
    '<member><name>other_config</name><value><struct>' +
    '<member><name>a&b</name><value>1</value></member>' +
    '<member><name>x<y>z</name><value>a&amp;b&lt;c</value></member>' +
    '<member><name>a&amp;b</name><value>2</value></member>' +
    '<member><name>nicira-iface-id</name><value>port-1</value></member>' +
    '</struct></value></member>' +
    '</struct></value></member></struct></value>',
);
const ODD_KEYS_DECODED = {
  'OpaqueRef:v1': {
    uuid: '7f1c3b2a-0000-4000-8000-000000000001',
    other_config: { 'a&b': '1', 'x<y>z': 'a&b<c', 'a&amp;b': '2', 'nicira-iface-id': 'port-1' },
  },
};

describe('XML-RPC member names as xapi writes them: raw (ocaml-rpc xmlrpc.ml:106-110)', () => {
  it('the fast path takes the reply and gives every key exactly as stored', () => {
    expect(scanXmlRpcReply(VIF_WITH_ODD_KEYS)).toBeDefined();
    expect(decodeXmlRpcResponse(VIF_WITH_ODD_KEYS, 'VIF.get_all_records_where')).toStrictEqual(ODD_KEYS_DECODED);
  });

  it('the xml2js reference reads the names the same way', () => {
    expect(decodeXmlRpcResponseReference(VIF_WITH_ODD_KEYS, 'VIF.get_all_records_where')).toStrictEqual(ODD_KEYS_DECODED);
  });

  it('a reply the fast path leaves to xml2js (whitespace between elements) keeps the odd keys too', () => {
    const pretty = VIF_WITH_ODD_KEYS.replace('<methodResponse>', '<methodResponse>\n');
    expect(scanXmlRpcReply(pretty)).toBeUndefined();
    expect(decodeXmlRpcResponse(pretty, 'VIF.get_all_records_where')).toStrictEqual(ODD_KEYS_DECODED);
  });

  it('__proto__ as a raw key stays an own member', () => {
    const body = success('<value><struct><member><name>__proto__</name><value>x&amp;</value></member><member><name>a&b</name><value>1</value></member></struct></value>');
    for (const decode of [decodeXmlRpcResponse, decodeXmlRpcResponseReference]) {
      const v = decode(body, 'm') as Record<string, XapiValue>;
      expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toBe('x&');
      expect(v['a&b']).toBe('1');
    }
  });

  it('a key holding `</name>` itself cannot be delimited: a typed XAPI_PROTOCOL error, from both decoders', () => {
    const body = success('<value><struct><member><name>a</name>b</name><value>1</value></member></struct></value>');
    expect(thrown(() => decodeXmlRpcResponse(body, 'm'))).toMatchObject({ code: 'XAPI_PROTOCOL' });
    expect(thrown(() => decodeXmlRpcResponseReference(body, 'm'))).toMatchObject({ code: 'XAPI_PROTOCOL' });
  });
});

describe('record fields xapi types beyond strings', () => {
  // VM.get_record: memory_overhead is int64 (bare), VCPUs_utilisation a map of doubles, a date
  // written unescaped (xmlrpc.ml:94-97), and valid_ref_counts: `<i4>` from the master, a bare
  // string when a pool member forwards the reply.
  const RECORD = success(
    '<value><struct>' +
      '<member><name>memory_overhead</name><value>11534336</value></member>' +
      '<member><name>start_time</name><value><dateTime.iso8601>20260101T12:00:00Z</dateTime.iso8601></value></member>' +
      '<member><name>VCPUs_utilisation</name><value><struct><member><name>0</name><value><double>0.0125</double></value></member></struct></value></member>' +
      '<member><name>scale</name><value><double>1e+21</double></value></member>' +
      '</struct></value>',
  );

  it.each([
    ['fast path + fallback', decodeXmlRpcResponse],
    ['xml2js reference', decodeXmlRpcResponseReference],
  ])('%s: doubles are numbers, dates are xapi-format strings', (_name, decode) => {
    expect(decode(RECORD, 'VM.get_record')).toStrictEqual({
      memory_overhead: '11534336',
      start_time: '20260101T12:00:00Z',
      VCPUs_utilisation: { '0': 0.0125 },
      scale: 1e21,
    });
  });

  it('valid_ref_counts decode to what the wire says: numbers from <i4>, strings when bare', () => {
    const counts = (inner: string): string => success(`<value><struct><member><name>valid_ref_counts</name><value><struct>${inner}</struct></value></member><member><name>token</name><value>42,17</value></member></struct></value>`);
    expect(decodeXmlRpcResponse(counts('<member><name>VM</name><value><i4>3</i4></value></member>'), 'event.from')).toStrictEqual({ valid_ref_counts: { VM: 3 }, token: '42,17' });
    expect(decodeXmlRpcResponse(counts('<member><name>VM</name><value>3</value></member>'), 'event.from')).toStrictEqual({ valid_ref_counts: { VM: '3' }, token: '42,17' });
  });
});

describe('JSON-RPC failures in both shapes xapi sends become the same XapiError', () => {
  it.each([
    ['inside dispatch (V2 error object)', '{"jsonrpc":"2.0","error":{"code":1,"message":"HANDLE_INVALID","data":["VIF","OpaqueRef:x"]},"id":12}'],
    // api_server.ml:188-197: a Server_error raised outside dispatch, an array with the request id.
    ['outside dispatch (array, with the request id)', '{"jsonrpc":"2.0","error":["HANDLE_INVALID","VIF","OpaqueRef:x"],"id":12}'],
    ['outside dispatch (array, id 0)', '{"jsonrpc":"2.0","error":["HANDLE_INVALID","VIF","OpaqueRef:x"],"id":0}'],
    ['V1', '{"result":null,"error":["HANDLE_INVALID","VIF","OpaqueRef:x"],"id":12}'],
  ])('%s', (_name, body) => {
    const err = thrown(() => jsonRpcCodec.decodeResponse(body, 'VIF.get_record'));
    expect(err).toBeInstanceOf(XapiError);
    expect(err).toMatchObject({ code: 'HANDLE_INVALID', params: ['VIF', 'OpaqueRef:x'], method: 'VIF.get_record' });
  });
});
