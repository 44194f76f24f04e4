import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XapiError, XapiTransportError } from '../../../src/xapi/errors.js';
import type { XapiValue } from '../../../src/xapi/codec/types.js';
import { XMLRPC_MAX_VALUE_DEPTH } from '../../../src/xapi/codec/limits.js';
import { scanXmlRpcReply } from '../../../src/xapi/codec/xmlrpc-fast.js';
import {
  decodeXmlRpcResponse,
  decodeXmlRpcResponseReference,
  encodeXapiValue,
  encodeXmlRpcBareResponse,
  xmlRpcCodec,
} from '../../../src/xapi/codec/xmlrpc.js';

/*
 * The single-pass decoder (src/xapi/codec/xmlrpc-fast.ts) against the xml2js reference: on what
 * XAPI emits (docs/xapi.md §2) it is taken and agrees exactly; on anything else it steps
 * aside and the reference decides, errors included.
 */

const HEAD = '<?xml version="1.0"?><methodResponse><params><param>';
const TAIL = '</param></params>' + '</methodResponse>';
const envelope = (valueXml: string): string =>
  `${HEAD}<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>${valueXml}</member></struct></value>${TAIL}`;

/**
 * A structural image of a decoded value for comparisons: vitest's equality reads `.constructor`, which
 * is an ordinary member name in XAPI maps, so decoded structs are compared through this image (own
 * members in order, prototypes, -0) instead.
 */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return ['array', Object.getPrototypeOf(v) === Array.prototype, v.map(shape)];
  if (typeof v === 'object' && v !== null) {
    const own = Object.getOwnPropertyNames(v).length;
    return ['struct', Object.getPrototypeOf(v) === Object.prototype, own, Object.entries(v).map(([k, x]) => [k, shape(x)])];
  }
  if (typeof v === 'number') return ['number', Object.is(v, -0) ? '-0' : String(v)];
  return [typeof v, v];
}

type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly kind: 'XapiError'; readonly code: string; readonly params: readonly string[] }
  | { readonly ok: false; readonly kind: 'XAPI_PROTOCOL' }
  | { readonly ok: false; readonly kind: 'other'; readonly error: unknown };

function outcome(decode: (body: string, method: string) => XapiValue, body: string): Outcome {
  try {
    return { ok: true, value: shape(decode(body, 'm')) };
  } catch (err) {
    if (err instanceof XapiError) return { ok: false, kind: 'XapiError', code: err.code, params: err.params };
    if (err instanceof XapiTransportError && err.code === 'XAPI_PROTOCOL') return { ok: false, kind: 'XAPI_PROTOCOL' };
    return { ok: false, kind: 'other', error: err };
  }
}

/** Both decoders give the same value or the same typed error, and the scanner never throws. */
function expectSameOutcome(body: string): Outcome {
  expect(() => scanXmlRpcReply(body)).not.toThrow();
  const fast = outcome(decodeXmlRpcResponse, body);
  const reference = outcome(decodeXmlRpcResponseReference, body);
  expect(fast).toStrictEqual(reference);
  expect(fast.ok || fast.kind !== 'other').toBe(true);
  return fast;
}

// Any UTF-16 text, lone surrogates and C0 controls included; the server encoder drops the controls
// XML cannot carry, as rpclib does (docs/xapi.md §2).
const text = fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii' }), fc.constantFrom('<', '>', '&', '"', "'", '&amp;', ']]>', '\r\n'));
// rpclib writes member names verbatim (ocaml-rpc xmlrpc.ml:106-110), `<` and `&` included, and both
// decoders read them raw; only a name holding `</name>` itself cannot be delimited.
const key = text.filter((k) => !k.includes('</name>') && k !== 'valid_ref_counts');
const value: fc.Arbitrary<XapiValue> = fc.letrec<{ v: XapiValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    text,
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(key, tie('v'), { maxKeys: 5, noNullPrototype: true }),
    fc.constantFrom<XapiValue>('__proto__', JSON.parse('{"__proto__":"x","constructor":{}}') as XapiValue, { valid_ref_counts: { VM: 3 } }),
  ),
})).v;

/** Documents as the simulator's server encoder writes them: success, failure, bare. */
const serverDocument = fc.oneof(
  value.map((v) => xmlRpcCodec.encodeSuccess(v)),
  fc.tuple(text, fc.array(text, { maxLength: 3 })).map(([code, params]) => xmlRpcCodec.encodeFailure(code, params)),
  value.map((v) => encodeXmlRpcBareResponse(v)),
);

describe('fast XML-RPC decoding agrees with the xml2js reference (property)', () => {
  it('server-encoded documents take the fast path and decode exactly like xml2js', () => {
    fc.assert(
      fc.property(value, (v) => {
        const body = xmlRpcCodec.encodeSuccess(v);
        expect(scanXmlRpcReply(body)).toBeDefined();
        expect(shape(decodeXmlRpcResponse(body, 'm'))).toStrictEqual(shape(decodeXmlRpcResponseReference(body, 'm')));
      }),
      { numRuns: 500 },
    );
  });

  it('failures and bare replies agree too', () => {
    fc.assert(
      fc.property(serverDocument, (body) => {
        expect(scanXmlRpcReply(body)).toBeDefined();
        expectSameOutcome(body);
      }),
      { numRuns: 300 },
    );
  });

  it('character references and entities decode as sax does, whatever the code point', () => {
    const piece = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 3 }).map((s) => s.replace(/[<&]/g, '')),
      fc.constantFrom('&lt;', '&gt;', '&amp;', '&quot;', '&apos;', '&AMP;', '&Lt;', '&nbsp;', '&#;', '&#x;', '&#X41;', '&#-1;', '&#+65;', '&# 65;', '&#65', '&'),
      fc.oneof(fc.integer({ min: 0, max: 0x11_0000 }), fc.constantFrom(0, 9, 10, 13, 31, 32, 0xd7ff, 0xd800, 0xdfff, 0xe000, 0xfffd, 0xfffe, 0xffff, 0x10000, 0x10ffff, 0x110000)).chain((cp) =>
        fc.constantFrom(`&#${cp};`, `&#x${cp.toString(16)};`, `&#x${cp.toString(16).toUpperCase()};`, `&#000${cp};`, `&#x00${cp.toString(16)};`),
      ),
    );
    const rawText = fc.array(piece, { maxLength: 6 }).map((p) => p.join(''));
    fc.assert(
      fc.property(rawText, rawText, fc.constantFrom('bare', 'string', 'name'), (t, k, where) => {
        const xml =
          where === 'bare'
            ? `<value>${t}</value>`
            : where === 'string'
              ? `<value><string>${t}</string></value>`
              : `<value><struct><member><name>${k}</name><value>${t}</value></member></struct></value>`;
        expectSameOutcome(envelope(xml));
      }),
      { numRuns: 1000 },
    );
  });

  it('mutated and truncated documents: same value or same typed error, never another throw', () => {
    const token = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 4 }),
      fc.constantFrom(
        '<', '>', '&', '/', ' ', '\n', '<!-- c -->', '<![CDATA[x]]>', '<?pi x?>', '&bogus;', '&#0;', '&#65;', '<value>', '</value>', '<value/>', '<struct>', '</struct>',
        '<array><data>', '</data></array>', '<member><name>', '</name>', '</member>', '<i4>', '</i4>', '<int>1</int>', '<double>', '<boolean>', '<nil/>', '<nil>', '<string>', '<blob>', '<params>', '<param>', '<fault>', 'x="1"',
      ),
    );
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), what: token }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(serverDocument, fc.array(mutation, { minLength: 1, maxLength: 3 }), (doc, mutations) => {
        let body = doc;
        for (const m of mutations) {
          const at = m.at % (body.length + 1);
          if (m.op === 'insert') body = body.slice(0, at) + m.what + body.slice(at);
          else if (m.op === 'delete') body = body.slice(0, at) + body.slice(at + m.len);
          else body = body.slice(0, at);
        }
        expectSameOutcome(body);
      }),
      { numRuns: 2000 },
    );
  });

  it('member names that rpclib leaves unescaped (docs/xapi.md §2 (unescaped member names)) decode as written, on both paths', () => {
    fc.assert(
      fc.property(fc.dictionary(key, fc.constantFrom('v', '1'), { maxKeys: 3, noNullPrototype: true }), (v) => {
        const body = xmlRpcCodec.encodeSuccess(v);
        expect(scanXmlRpcReply(body)).toBeDefined();
        expect(expectSameOutcome(body)).toStrictEqual({ ok: true, value: shape(v) });
      }),
    );
  });

  it('arbitrary strings: the scanner never throws and the decoders agree', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expectSameOutcome(s);
        expectSameOutcome(`${HEAD}${s}${TAIL}`);
      }),
    );
  });
});

describe('fast XML-RPC decoding: what it takes and what it leaves to xml2js', () => {
  it('takes the literal payloads of docs/xapi.md §2.1', () => {
    const ok =
      '<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>OpaqueRef:0b6e7c1e-…</value></member></struct></value></param></params></methodResponse>';
    const failure =
      '<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>SESSION_INVALID</value><value>OpaqueRef:0b6e7c1e-…</value></data></array></value></member></struct></value></param></params></methodResponse>';
    const fragment =
      '<struct><member><name>uuid</name><value>6ab1b260-…</value></member><member><name>device</name><value>0</value></member><member><name>MAC</name><value>aa:bb:cc:dd:ee:ff</value></member><member><name>MTU</name><value>1500</value></member><member><name>currently_attached</name><value><boolean>1</boolean></value></member><member><name>VM</name><value>OpaqueRef:…</value></member><member><name>network</name><value>OpaqueRef:…</value></member><member><name>other_config</name><value><struct><member><name>nicira-iface-id</name><value>custom-id</value></member></struct></value></member><member><name>ipv4_allowed</name><value><array><data></data></array></value></member><member><name>qos_algorithm_params</name><value><struct></struct></value></member></struct>';
    for (const body of [ok, failure, envelope(`<value>${fragment}</value>`)]) {
      expect(scanXmlRpcReply(body)).toBeDefined();
      expectSameOutcome(body);
    }
    expect(scanXmlRpcReply(ok)).toStrictEqual({ fault: false, value: { Status: 'Success', Value: 'OpaqueRef:0b6e7c1e-…' } });
  });

  it('takes every scalar type XAPI and lenient peers use', () => {
    const cases: [string, XapiValue][] = [
      ['<value>1500</value>', '1500'],
      ['<value></value>', ''],
      ['<value/>', ''],
      ['<value><string>x</string></value>', 'x'],
      ['<value><i4>-7</i4></value>', -7],
      ['<value><int>+7</int></value>', 7],
      ['<value><i8>9223372036854775807</i8></value>', '9223372036854775807'],
      ['<value><boolean>1</boolean></value>', true],
      ['<value><boolean>0</boolean></value>', false],
      ['<value><double>-2.5e-07</double></value>', -2.5e-7],
      ['<value><dateTime.iso8601>20250319T04:16:24Z</dateTime.iso8601></value>', '20250319T04:16:24Z'],
      ['<value><base64>AAEC</base64></value>', 'AAEC'],
      ['<value><nil/></value>', null],
      ['<value><nil></nil></value>', null],
      ['<value>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#65;&#x42;&#x1F600;</value>', 'a <b> & "c" \'d\' AB😀'],
    ];
    for (const [xml, expected] of cases) {
      const body = envelope(xml);
      expect(scanXmlRpcReply(body), xml).toBeDefined();
      expect(decodeXmlRpcResponse(body, 'm'), xml).toStrictEqual(expected);
      expect(decodeXmlRpcResponseReference(body, 'm'), xml).toStrictEqual(expected);
    }
  });

  it('takes a <fault> and reports it as XMLRPC_FAULT', () => {
    const body =
      '<?xml version="1.0"?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>500</int></value></member><member><name>faultString</name><value>boom</value></member></struct></value></fault></methodResponse>';
    expect(scanXmlRpcReply(body)).toBeDefined();
    expect(expectSameOutcome(body)).toStrictEqual({ ok: false, kind: 'XapiError', code: 'XMLRPC_FAULT', params: ['500', 'boom'] });
  });

  it('leaves anything else to xml2js, which still decodes it', () => {
    const documents: [string, string, XapiValue][] = [
      ['whitespace between elements', `<?xml version="1.0"?>\n<methodResponse>\n<params><param><value><array><data><value>a</value></data></array></value></param></params></methodResponse>`, ['a']],
      ['a comment', `${HEAD}<value><!-- x --><array><data><value>a</value></data></array></value>${TAIL}`, ['a']],
      ['CDATA', `${HEAD}<value><![CDATA[<a&b>]]></value>${TAIL}`, '<a&b>'],
      ['a processing instruction', `${HEAD}<?pi x?><value>a</value>${TAIL}`, 'a'],
      ['no declaration, DOCTYPE', `<!DOCTYPE methodResponse><methodResponse><params><param><value>a</value></param></params></methodResponse>`, 'a'],
      ['another declaration', `<?xml version="1.0" encoding="UTF-8"?><methodResponse><params><param><value>a</value></param></params></methodResponse>`, 'a'],
      ['an attribute', `${HEAD}<value kind="x">a</value>${TAIL}`, 'a'],
      ['upper-case entity (sax retries in lower case)', `${HEAD}<value>&AMP;&#X41;</value>${TAIL}`, '&A'],
      ['members in another order', `${HEAD}<value><struct><member><value>v</value><name>k</name></member></struct></value>${TAIL}`, { k: 'v' }],
      ['text beside an element', `${HEAD}<value>ab<string>x</string></value>${TAIL}`, 'x'],
      ['<struct/>', `${HEAD}<value><struct/></value>${TAIL}`, {}],
      ['trailing garbage after the root (xml2js settles on the root)', `${HEAD}<value>a</value>${TAIL}junk`, 'a'],
    ];
    for (const [name, body, expected] of documents) {
      expect(scanXmlRpcReply(body), name).toBeUndefined();
      expect(decodeXmlRpcResponse(body, 'm'), name).toStrictEqual(expected);
      expectSameOutcome(body);
    }
  });

  it('leaves malformed documents to xml2js, whose error is XAPI_PROTOCOL', () => {
    for (const body of [
      '',
      `${HEAD}<value><struct>`,
      envelope('<value><int>12x</int></value>'),
      envelope('<value><blob>x</blob></value>'),
      envelope('<value>&bogus;</value>'),
      envelope('<value>&#0;</value>'),
      envelope('<value>&#xD800;</value>'),
      envelope('<value><array></array></value>'),
      `${HEAD}<value>a</value></param><param><value>b</value>${TAIL}`,
    ]) {
      expect(scanXmlRpcReply(body), body).toBeUndefined();
      expect(expectSameOutcome(body), body).toStrictEqual({ ok: false, kind: 'XAPI_PROTOCOL' });
    }
  });

  it('builds structs with defineMember: __proto__ is an own member, no prototype is touched', () => {
    const body = envelope(
      '<value><struct><member><name>__proto__</name><value><struct><member><name>polluted</name><value>yes</value></member></struct></value></member><member><name>constructor</name><value>c</value></member></struct></value>',
    );
    const v = scanXmlRpcReply(body)?.value as { Value: object };
    expect(Object.getPrototypeOf(v.Value)).toBe(Object.prototype);
    expect(Object.hasOwn(v.Value, '__proto__')).toBe(true);
    expect(Object.keys(v.Value)).toStrictEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    ['arrays', (d: number) => `${'<value><array><data>'.repeat(d)}${'</data></array></value>'.repeat(d)}`],
    ['structs', (d: number) => `${'<value><struct><member><name>k</name>'.repeat(d)}<value/>${'</member></struct></value>'.repeat(d)}`],
  ])('decodes %s nested to XMLRPC_MAX_VALUE_DEPTH and refuses one level more, without throwing', (_kind, nest) => {
    // The reply's own Status/Value struct is the first level.
    const deepest = envelope(nest(XMLRPC_MAX_VALUE_DEPTH - 1));
    expect(scanXmlRpcReply(deepest)).toBeDefined();
    expect(expectSameOutcome(deepest).ok).toBe(true);
    for (const depth of [XMLRPC_MAX_VALUE_DEPTH, 10_000]) {
      const body = envelope(nest(depth));
      expect(scanXmlRpcReply(body)).toBeUndefined();
      expect(expectSameOutcome(body)).toStrictEqual({ ok: false, kind: 'XAPI_PROTOCOL' });
    }
  });

  it('encodes what it decodes: a VIF record round-trips through the server encoder', () => {
    const record = { uuid: 'u', MTU: '1500', other_config: { 'nicira-iface-id': 'a>b' }, ipv4_allowed: [], currently_attached: true };
    expect(scanXmlRpcReply(xmlRpcCodec.encodeSuccess({ 'OpaqueRef:1': record }))?.value).toStrictEqual({ Status: 'Success', Value: { 'OpaqueRef:1': record } });
    expect(encodeXapiValue(record)).toContain('<name>nicira-iface-id</name><value>a&gt;b</value>');
  });
});
