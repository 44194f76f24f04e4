import { XMLRPC_MAX_VALUE_DEPTH } from './limits.js';
import { defineMember } from './safe-object.js';
import type { XapiValue } from './types.js';
import { decodeScalar } from './xmlrpc-scalar.js';

/*
 * A single-pass decoder for the XML-RPC replies XAPI actually emits (docs/xapi.md §2): rpclib's
 * `strict=false` encoder writes no whitespace between tags, no attributes, no comments, CDATA or
 * DOCTYPE, only the leading `<?xml version="1.0"?>`, and a fixed vocabulary of elements. For that
 * subset the scanner builds `XapiValue`s straight from the string (an index walk with `indexOf`/
 * `startsWith`, no intermediate tree), which is what makes multi-megabyte
 * `VIF.get_all_records_where` answers cheap (issue 7).
 *
 * Contract: `scanXmlRpcReply` either returns exactly what the xml2js reference decoder
 * (./xmlrpc.ts) builds for the same body, or `undefined` when the body is outside that subset or
 * is wrong in any way (malformed XML, an unknown type, a bad `<int>`, an unknown entity, …); it never
 * throws. The caller then runs the reference decoder, which produces the result or the typed
 * `XAPI_PROTOCOL` error. In values, entities are decoded as sax (strict mode, under xml2js) does:
 * the five predefined ones and numeric character references that denote an XML `Char`; anything else
 * is left to the reference. Struct member names are NOT escaped by xapi and are taken raw (see
 * `rawName`); the reference decoder escapes them before parsing so that it reads them the same way.
 */

/** A `<methodResponse>`: its `<params><param><value>` or its `<fault><value>`. */
export interface XmlRpcReply {
  readonly fault: boolean;
  readonly value: XapiValue;
}

/** Thrown inside the scanner to abandon it; never escapes `scanXmlRpcReply`. */
class Unsupported extends Error {}
const UNSUPPORTED = new Unsupported('outside the fast XML-RPC subset');

// The scanner is synchronous and not re-entrant, so its cursor lives in module state.
let src = '';
let pos = 0;
/** Arrays and structs open around the value being scanned. */
let depth = 0;
/** Index of the next `&` at or after some earlier position, -1 when the rest of `src` has none. */
let nextAmp = -1;

function unsupported(): never {
  throw UNSUPPORTED;
}

function expect(literal: string): void {
  if (!src.startsWith(literal, pos)) unsupported();
  pos += literal.length;
}

const XML_DECL = '<?xml version="1.0"?>';
/** sax's `isWhitespace`: what may follow the root element. */
const isXmlSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
/** The longest entity reference the scanner decodes itself: `&#1114111;`. */
const MAX_ENTITY = 9;

/** XML 1.0 `Char`; sax refuses a character reference to anything else (sax `isXmlChar`). */
function isXmlChar(n: number): boolean {
  return n === 0x9 || n === 0xa || n === 0xd || (n >= 0x20 && n <= 0xd7ff) || (n >= 0xe000 && n <= 0xfffd) || (n >= 0x10000 && n <= 0x10ffff);
}

function isDigits(s: string, from: number, hex: boolean): boolean {
  if (from >= s.length) return false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (hex && ((c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)));
    if (!ok) return false;
  }
  return true;
}

/** The text an entity reference (without `&` and `;`) stands for, as sax decodes it in strict mode. */
function entityText(name: string): string {
  switch (name) {
    case 'lt':
      return '<';
    case 'gt':
      return '>';
    case 'amp':
      return '&';
    case 'quot':
      return '"';
    case 'apos':
      return "'";
    default:
      break;
  }
  // `&#65;` / `&#x41;`. sax also accepts `&#X41;` and `&AMP;` (it retries in lower case): those
  // rare spellings are left to the reference decoder.
  const hex = name.startsWith('#x');
  const from = hex ? 2 : 1;
  if (!name.startsWith('#') || !isDigits(name, from, hex)) unsupported();
  const code = Number.parseInt(name.slice(from), hex ? 16 : 10);
  // sax rejects `&#0;` and references to non-`Char`s (NUL, C0 controls, surrogates, U+FFFE).
  if (!isXmlChar(code)) unsupported();
  return String.fromCodePoint(code);
}

/**
 * V8 makes a substring of 13 or more characters a view on its parent, so every uuid or ref decoded
 * with a bare `slice` would keep the whole reply body (megabytes, issue 7) alive for as long as the
 * record cache holds it. Decoded text is therefore copied out: prefixing forces a flat copy when the
 * result is sliced again, and the second view pins only that small copy.
 */
const SLICE_MIN = 13;
function detached(s: string): string {
  return (' ' + s).slice(1);
}

/** Character data from `pos` up to `end` (the next `<`), entities decoded, not sharing `src`. */
function textUntil(end: number): string {
  if (nextAmp !== -1 && nextAmp < pos) nextAmp = src.indexOf('&', pos);
  if (nextAmp === -1 || nextAmp >= end) return end - pos < SLICE_MIN ? src.slice(pos, end) : detached(src.slice(pos, end));
  let out = '';
  let from = pos;
  let amp = nextAmp;
  while (amp !== -1 && amp < end) {
    const semi = src.indexOf(';', amp + 1);
    if (semi === -1 || semi > end || semi - amp > MAX_ENTITY + 1) unsupported();
    out += src.slice(from, amp) + entityText(src.slice(amp + 1, semi));
    from = semi + 1;
    amp = src.indexOf('&', from);
  }
  nextAmp = amp;
  return detached(out + src.slice(from, end));
}

function indexOrUnsupported(needle: string, from: number): number {
  const i = src.indexOf(needle, from);
  if (i === -1) unsupported();
  return i;
}

/** The longest type element name, `dateTime.iso8601`, plus room for `/`. */
const MAX_TAG = 17;

/** One `<value>…</value>` starting at `pos`; leaves `pos` after it. */
function scanValue(): XapiValue {
  if (src.startsWith('<value/>', pos)) {
    pos += 8;
    return '';
  }
  expect('<value>');
  const lt = indexOrUnsupported('<', pos);
  if (lt > pos || src.charCodeAt(lt + 1) === 0x2f) {
    // A bare `<value>text</value>`: a string or an int64 (docs/xapi.md §2), or empty.
    const text = textUntil(lt);
    pos = lt;
    expect('</value>');
    return text;
  }
  const gt = indexOrUnsupported('>', pos);
  if (gt - pos > MAX_TAG + 1) unsupported();
  const tag = src.slice(pos + 1, gt);
  pos = gt + 1;
  let value: XapiValue;
  if (tag === 'struct' || tag === 'array') {
    if (++depth > XMLRPC_MAX_VALUE_DEPTH) unsupported();
    value = tag === 'struct' ? scanStructBody() : scanArrayBody();
    depth -= 1;
  }
  else if (tag === 'nil/') value = null;
  else {
    // A typed scalar holds text only: `<tag>text</tag>`.
    const end = indexOrUnsupported('<', pos);
    const text = textUntil(end);
    pos = end;
    if (src.charCodeAt(pos + 1) !== 0x2f || !src.startsWith(tag, pos + 2) || src.charCodeAt(pos + 2 + tag.length) !== 0x3e) unsupported();
    pos += tag.length + 3;
    const scalar = decodeScalar(tag, text);
    if (scalar === undefined) unsupported();
    value = scalar;
  }
  expect('</value>');
  return value;
}

const NAME_END = '</name>';

/**
 * A member name, taken raw up to `</name>`: xapi writes member names without escaping
 * (mirage/ocaml-rpc src/lib/xmlrpc.ml:106-110, `add_member` adds `name` as is, while string values
 * go through `encode_buf`, xmlrpc.ml:90-93), and map keys may hold `&`, `<` or `>`
 * (xapi-project/xen-api ocaml/database/db_cache_impl.ml stores them unchecked). Reading the name raw
 * is the exact inverse of that encoder, so `a&b`, `a<b` and even `a&amp;b` come out as stored. A
 * key containing `</name>` itself cannot be told apart from the end of the name; such a reply stays
 * undecodable (and the reference decoder, which reads names the same way, says so).
 */
function rawName(): string {
  const end = indexOrUnsupported(NAME_END, pos);
  const name = end - pos < SLICE_MIN ? src.slice(pos, end) : detached(src.slice(pos, end));
  pos = end + NAME_END.length;
  return name;
}

/** `<member><name>K</name><value>…</value></member>…</struct>`, after `<struct>`. */
function scanStructBody(): XapiValue {
  const out: Record<string, XapiValue> = {};
  while (!src.startsWith('</struct>', pos)) {
    expect('<member><name>');
    const name = rawName();
    const value = scanValue();
    expect('</member>');
    // Member names come from the peer: never a plain assignment (prototype pollution).
    defineMember(out, name, value);
  }
  pos += 9;
  return out;
}

/** `<data><value>…</value>…</data></array>`, after `<array>`. */
function scanArrayBody(): XapiValue {
  expect('<data>');
  const out: XapiValue[] = [];
  while (!src.startsWith('</data></array>', pos)) out.push(scanValue());
  pos += 15;
  return out;
}

function scanDocument(): XmlRpcReply {
  if (src.startsWith(XML_DECL, pos)) pos += XML_DECL.length;
  expect('<methodResponse>');
  let reply: XmlRpcReply;
  if (src.startsWith('<params><param>', pos)) {
    pos += 15;
    reply = { fault: false, value: scanValue() };
    expect('</param></params>');
  } else {
    expect('<fault>');
    reply = { fault: true, value: scanValue() };
    expect('</fault>');
  }
  expect('</methodResponse>');
  // xml2js settles when the root element closes; trailing whitespace is all the subset allows.
  for (; pos < src.length; pos++) if (!isXmlSpace(src.charCodeAt(pos))) unsupported();
  return reply;
}

/**
 * The reply carried by `body` when it lies in the subset XAPI emits, else `undefined` (the caller
 * falls back to the xml2js reference decoder). Never throws.
 */
export function scanXmlRpcReply(body: string): XmlRpcReply | undefined {
  src = body;
  pos = 0;
  depth = 0;
  nextAmp = body.indexOf('&');
  try {
    return scanDocument();
  } catch {
    // Unsupported, a scalar that does not parse, or a stack overflow on absurd nesting: the
    // reference decoder decides.
    return undefined;
  } finally {
    src = '';
  }
}
