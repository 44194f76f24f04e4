import { createRequire } from 'node:module';
import type xml2js from 'xml2js';
import { XapiError, XapiTransportError } from '../errors.js';
import { assertRequestSize, XMLRPC_MAX_VALUE_DEPTH } from './limits.js';
import { defineMember } from './safe-object.js';
import type { XapiCall, XapiStruct, XapiValue, XapiWireCodec } from './types.js';
import { scanXmlRpcReply, type XmlRpcReply } from './xmlrpc-fast.js';
import { decodeScalar, xmlRpcProtocolError } from './xmlrpc-scalar.js';

/*
 * XML-RPC as XAPI speaks it (docs/xapi.md §2). Two encoders exist on purpose:
 * - the client encoder types every scalar (`<string>`, `<int>`, `<double>`, `<boolean>`), which
 *   XAPI's lenient parser accepts (§2 "Inbound parsing");
 * - the server encoder (used by the simulator) reproduces rpclib's `strict=false` output byte for
 *   byte: no whitespace, strings and int64 as a bare `<value>`, `<i4>` only for Int32.
 * Two response decoders as well: xml2js is the reference and handles any well-formed XML-RPC; the
 * single-pass scanner of ./xmlrpc-fast.ts handles exactly what rpclib emits and defers everything
 * else to the reference, so results (and errors) are those of the reference.
 */

const XML_DECL = '<?xml version="1.0"?>';

// ---------------------------------------------------------------------------------------------
// Escaping

/** XML 1.0 forbids C0 controls except TAB, LF, CR; rpclib drops them silently (RPC `xmlrpc.ml:52-67`). */
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g;
const TEXT_SPECIALS = /[<>&"]/g;
const ENTITY: Readonly<Record<string, string>> = { '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' };

/** Text content escaped exactly as rpclib does: `> < & "` become entities, C0 controls are dropped. */
export function escapeXapiText(s: string): string {
  return s.replace(FORBIDDEN_CONTROL, '').replace(TEXT_SPECIALS, (c) => ENTITY[c] ?? c);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** C's `%.16g`, the format rpclib uses for `<double>` (RPC `xmlrpc.ml`, `Float`). */
export function formatDouble(x: number): string {
  if (!Number.isFinite(x)) throw new XapiTransportError('XAPI_PROTOCOL', `cannot encode non-finite number ${x} in XML-RPC`);
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mantissa = '', expText = '0'] = x.toExponential(15).split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const m = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
    const sign = exp < 0 ? '-' : '+';
    return `${m}e${sign}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const fixed = x.toFixed(Math.max(0, 15 - exp));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

function isStruct(v: XapiValue): v is XapiStruct {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A typed `<value>` for a request body (client side). Member names are escaped. */
export function encodeRequestValue(v: XapiValue): string {
  if (typeof v === 'string') return `<value><string>${escapeXapiText(v)}</string></value>`;
  if (typeof v === 'boolean') return `<value><boolean>${v ? '1' : '0'}</boolean></value>`;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new XapiTransportError('XAPI_PROTOCOL', `cannot encode non-finite number ${v} in XML-RPC`);
    // The shortest round-tripping decimal: XAPI's float_of_string reads it without loss.
    return Number.isSafeInteger(v) ? `<value><int>${v}</int></value>` : `<value><double>${String(v)}</double></value>`;
  }
  if (v === null) return '<value><nil/></value>';
  if (Array.isArray(v)) return `<value><array><data>${(v as readonly XapiValue[]).map(encodeRequestValue).join('')}</data></array></value>`;
  let members = '';
  for (const [name, member] of Object.entries(v as XapiStruct)) {
    if ((member as XapiValue | undefined) === undefined) continue;
    members += `<member><name>${escapeXapiText(name)}</name>${encodeRequestValue(member)}</member>`;
  }
  return `<value><struct>${members}</struct></value>`;
}

/**
 * A `<value>` exactly as XAPI emits it (server side, docs/xapi.md §2 table): strings and integers as
 * a bare `<value>`, non-integral numbers as `<double>`. Struct member names are written verbatim,
 * like rpclib's `add_member` (mirage/ocaml-rpc src/lib/xmlrpc.ml:106-110): a name containing `<` or
 * `&` yields a document no XML parser accepts, exactly as XAPI's does; `decodeResponse` reads it.
 * The only Int32 in XAPI's API is `valid_ref_counts` (docs/xapi.md §5.1), so the members of a struct
 * under that name are encoded as `<i4>`.
 */
export function encodeXapiValue(v: XapiValue, int32Members = false): string {
  if (typeof v === 'string') return `<value>${escapeXapiText(v)}</value>`;
  if (typeof v === 'boolean') return `<value><boolean>${v ? '1' : '0'}</boolean></value>`;
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return int32Members ? `<value><i4>${v}</i4></value>` : `<value>${v.toFixed(0)}</value>`;
    return `<value><double>${formatDouble(v)}</double></value>`;
  }
  if (v === null) return '<value><nil/></value>';
  if (Array.isArray(v)) return `<value><array><data>${(v as readonly XapiValue[]).map((e) => encodeXapiValue(e)).join('')}</data></array></value>`;
  let members = '';
  for (const [name, member] of Object.entries(v as XapiStruct)) {
    // An absent option field (e.g. `snapshot` on a `del` event) is omitted (docs/xapi.md §5.1).
    if ((member as XapiValue | undefined) === undefined) continue;
    members += `<member><name>${name}</name>${encodeXapiValue(member, int32Members || (name === 'valid_ref_counts' && isStruct(member)))}</member>`;
  }
  return `<value><struct>${members}</struct></value>`;
}

function methodResponse(valueXml: string): string {
  return `${XML_DECL}<methodResponse><params><param>${valueXml}</param></params></methodResponse>`;
}

/** A reply without the Status/Value envelope, as XAPI answers `system.listMethods` (docs/xapi.md §2). */
export function encodeXmlRpcBareResponse(value: XapiValue): string {
  return methodResponse(encodeXapiValue(value));
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** The xml2js tree with `explicitChildren` + `preserveChildrenOrder` + `charsAsChildren`. */
interface XmlNode {
  readonly '#name': string;
  readonly _?: string;
  readonly $$?: readonly XmlNode[];
}

/**
 * xml2js is loaded on first use: the daemon decodes what XAPI emits with the single-pass scanner, so
 * the reference parser (with sax and xmlbuilder: 1.3 MB of the daemon's heap once loaded) is only
 * needed for an unusual or malformed reply. xml2js is CommonJS, hence `require`.
 */
let xml2jsModule: typeof xml2js | undefined;
function loadXml2js(): typeof xml2js {
  xml2jsModule ??= createRequire(import.meta.url)('xml2js') as typeof xml2js;
  return xml2jsModule;
}

const PARSER_OPTIONS: xml2js.ParserOptions = {
  explicitChildren: true,
  preserveChildrenOrder: true,
  charsAsChildren: true,
  // Whitespace-only strings are legitimate values (`<value>  </value>` is "  ").
  includeWhiteChars: true,
  trim: false,
  normalize: false,
  explicitRoot: false,
  async: false,
  strict: true,
};

const protocolError = xmlRpcProtocolError;

/**
 * Parses synchronously. xml2js can throw from `parseString` and can invoke its callback twice
 * (once with the result, again with an error raised while handling it), so only the first
 * outcome counts and any throw becomes `XAPI_PROTOCOL`.
 */
function parseXml(body: string, method?: string): XmlNode {
  const outcome: { settled: boolean; failure?: unknown; root?: unknown } = { settled: false };
  const parser = new (loadXml2js().Parser)(PARSER_OPTIONS);
  try {
    parser.parseString(body, (err: Error | null, result: unknown) => {
      if (outcome.settled) return;
      outcome.settled = true;
      outcome.failure = err ?? undefined;
      outcome.root = result;
    });
  } catch (err) {
    if (!outcome.settled) {
      outcome.settled = true;
      outcome.failure = err;
    }
  }
  const { settled, failure, root } = outcome;
  if (!settled) throw protocolError('XML parser did not complete', method);
  if (failure !== undefined) {
    const detail = failure instanceof Error ? (failure.message.split('\n')[0] ?? '') : 'parse error';
    throw protocolError(`malformed XML: ${detail}`, method, failure);
  }
  if (typeof root !== 'object' || root === null || typeof (root as { '#name'?: unknown })['#name'] !== 'string') {
    throw protocolError('empty XML document', method);
  }
  return root as XmlNode;
}

function isTextNode(n: XmlNode): boolean {
  return n['#name'] === '__text__' || n['#name'] === '__cdata__';
}

function elements(n: XmlNode): XmlNode[] {
  return (n.$$ ?? []).filter((c) => !isTextNode(c) && !c['#name'].startsWith('__'));
}

function textOf(n: XmlNode): string {
  let s = '';
  for (const c of n.$$ ?? []) if (isTextNode(c)) s += c._ ?? '';
  return s;
}

function onlyChild(n: XmlNode, name: string, method?: string): XmlNode {
  const els = elements(n);
  const first = els[0];
  if (els.length !== 1 || first?.['#name'] !== name) throw protocolError(`expected exactly one <${name}> in <${n['#name']}>`, method);
  return first;
}

function decodeValueNode(node: XmlNode, method?: string, depth = 0): XapiValue {
  const els = elements(node);
  if (els.length === 0) return textOf(node); // bare <value>: string or int64 (docs/xapi.md §2)
  const typed = els[0];
  if (els.length > 1 || typed === undefined) throw protocolError('<value> holds more than one element', method);
  const scalar = decodeScalar(typed['#name'], textOf(typed), method);
  if (scalar !== undefined) return scalar;
  if ((typed['#name'] === 'array' || typed['#name'] === 'struct') && depth >= XMLRPC_MAX_VALUE_DEPTH) {
    throw protocolError('XML-RPC value nested too deeply', method);
  }
  switch (typed['#name']) {
    case 'array': {
      const data = onlyChild(typed, 'data', method);
      return elements(data).map((v) => {
        if (v['#name'] !== 'value') throw protocolError(`unexpected <${v['#name']}> in <data>`, method);
        return decodeValueNode(v, method, depth + 1);
      });
    }
    case 'struct': {
      const out: Record<string, XapiValue> = {};
      for (const member of elements(typed)) {
        if (member['#name'] !== 'member') throw protocolError(`unexpected <${member['#name']}> in <struct>`, method);
        const parts = elements(member);
        const nameNode = parts.find((p) => p['#name'] === 'name');
        const valueNode = parts.find((p) => p['#name'] === 'value');
        if (nameNode === undefined || valueNode === undefined || parts.length !== 2) throw protocolError('<member> needs one <name> and one <value>', method);
        defineMember(out, textOf(nameNode), decodeValueNode(valueNode, method, depth + 1));
      }
      return out;
    }
    default:
      throw protocolError(`unknown XML-RPC type <${typed['#name']}>`, method);
  }
}

function asStringParam(v: XapiValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/**
 * Unwraps XAPI's envelope (docs/xapi.md §2.1): `Status: Success` → `Value`; `Status: Failure` →
 * `XapiError(ErrorDescription[0], rest)`. A reply without `Status` (e.g. `system.listMethods`) is
 * returned as is.
 */
function unwrapEnvelope(v: XapiValue, method: string): XapiValue {
  if (!isStruct(v) || !Object.hasOwn(v, 'Status')) return v;
  const status = v.Status;
  if (status === 'Success') {
    if (!Object.hasOwn(v, 'Value')) throw protocolError('Success reply without Value', method);
    return v.Value ?? null;
  }
  if (status === 'Failure') {
    const description = v.ErrorDescription;
    if (!Array.isArray(description) || description.length === 0) throw protocolError('Failure reply without ErrorDescription', method);
    const [code, ...params] = (description as readonly XapiValue[]).map(asStringParam);
    throw new XapiError(code ?? '', params, method);
  }
  throw protocolError(`unknown Status ${JSON.stringify(status)}`, method);
}

/**
 * The reply of a `<methodResponse>` parsed with xml2js: the reference decoder. Nesting deep enough to
 * exhaust the stack (no XAPI reply comes near it) is a protocol error, not a RangeError.
 */
function parseReplyWithXml2js(body: string, method: string): XmlRpcReply {
  try {
    return parseReplyTree(body, method);
  } catch (err) {
    if (err instanceof RangeError) throw protocolError('XML-RPC value nested too deeply', method, err);
    throw err;
  }
}

function parseReplyTree(body: string, method: string): XmlRpcReply {
  const root = parseXml(body, method);
  if (root['#name'] !== 'methodResponse') throw protocolError(`expected <methodResponse>, got <${root['#name']}>`, method);
  const part = elements(root)[0];
  if (part?.['#name'] === 'fault') return { fault: true, value: decodeValueNode(onlyChild(part, 'value', method), method) };
  if (part?.['#name'] !== 'params') throw protocolError('<methodResponse> without <params> or <fault>', method);
  const param = onlyChild(part, 'param', method);
  return { fault: false, value: decodeValueNode(onlyChild(param, 'value', method), method) };
}

function settleReply(reply: XmlRpcReply, method: string): XapiValue {
  if (reply.fault) {
    // A transport-level XML-RPC fault, not an XAPI failure: surfaced as XapiError so that
    // `isTransient` treats it as permanent, with code XMLRPC_FAULT [faultCode; faultString].
    const fault = reply.value;
    const code = isStruct(fault) ? asStringParam(fault.faultCode ?? '') : '';
    const message = isStruct(fault) ? asStringParam(fault.faultString ?? '') : asStringParam(fault);
    throw new XapiError('XMLRPC_FAULT', [code, message], method);
  }
  return unwrapEnvelope(reply.value, method);
}

const RAW_MEMBER_NAME = /<name>([\s\S]*?)<\/name>/g;
const NAME_SPECIALS = /[<>&]/g;

/**
 * The reply with every `<name>` text escaped, so that an XML parser reads member names as xapi wrote
 * them: raw (mirage/ocaml-rpc src/lib/xmlrpc.ml:106-110; see `rawName` in ./xmlrpc-fast.ts). Without
 * this, one map key holding `&` or `<` anywhere in a reply (`xe vif-param-set other-config:a&b=1`)
 * makes the whole reply malformed XML. Replies only: requests are read by xapi's Xmlm-based parser,
 * which does decode entities in names, so the client escapes them (`encodeRequestValue`).
 */
export function escapeRawMemberNames(body: string): string {
  if (!body.includes('<name>')) return body;
  return body.replace(RAW_MEMBER_NAME, (_match, raw: string) => `<name>${raw.replace(NAME_SPECIALS, (c) => ENTITY[c] ?? c)}</name>`);
}

/** `decodeResponse` with xml2js only: the reference the fast path is held to (tests, benchmarks). */
export function decodeXmlRpcResponseReference(body: string, method: string): XapiValue {
  return settleReply(parseReplyWithXml2js(escapeRawMemberNames(body), method), method);
}

/**
 * `decodeResponse`: the single-pass scanner for the documents XAPI emits (docs/xapi.md §2), xml2js for
 * anything else, including every malformed body, so that errors are the reference's. Both read
 * member names raw, as xapi writes them, so a reply the scanner leaves aside decodes the same.
 */
export function decodeXmlRpcResponse(body: string, method: string): XapiValue {
  return settleReply(scanXmlRpcReply(body) ?? parseReplyWithXml2js(escapeRawMemberNames(body), method), method);
}

function decodeMethodCall(body: string): XapiCall {
  const root = parseXml(body);
  if (root['#name'] !== 'methodCall') throw protocolError(`expected <methodCall>, got <${root['#name']}>`);
  const els = elements(root);
  const nameNode = els.find((e) => e['#name'] === 'methodName');
  const paramsNode = els.find((e) => e['#name'] === 'params');
  if (nameNode === undefined) throw protocolError('<methodCall> without <methodName>');
  // rpclib requires <params> (docs/xapi.md §2: "A methodCall with no <params> fails").
  if (paramsNode === undefined) throw protocolError('<methodCall> without <params>');
  const method = textOf(nameNode).trim();
  if (method === '') throw protocolError('empty <methodName>');
  const params = elements(paramsNode).map((p) => {
    if (p['#name'] !== 'param') throw protocolError(`unexpected <${p['#name']}> in <params>`, method);
    return decodeValueNode(onlyChild(p, 'value', method), method);
  });
  return { method, params };
}

function encodeEnvelope(members: string): string {
  return methodResponse(`<value><struct>${members}</struct></value>`);
}

/** XML-RPC as XAPI speaks it; see the module comment and docs/xapi.md §2. */
export const xmlRpcCodec: XapiWireCodec = {
  protocol: 'xmlrpc',
  path: '/',
  contentType: 'text/xml',
  encodeCall(method, params) {
    const body = `${XML_DECL}<methodCall><methodName>${escapeXapiText(method)}</methodName><params>${params
      .map((p) => `<param>${encodeRequestValue(p)}</param>`)
      .join('')}</params></methodCall>`;
    return assertRequestSize(body, method);
  },
  decodeResponse: decodeXmlRpcResponse,
  decodeCall: decodeMethodCall,
  encodeSuccess(value) {
    return encodeEnvelope(`<member><name>Status</name><value>Success</value></member><member><name>Value</name>${encodeXapiValue(value)}</member>`);
  },
  encodeFailure(code, params) {
    const description = [code, ...params].map((p) => encodeXapiValue(p)).join('');
    return encodeEnvelope(
      `<member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data>${description}</data></array></value></member>`,
    );
  },
};
