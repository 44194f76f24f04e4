import { cachedEncoder, DateTime, Double, formatG, Int32, setMember, WireParseError, type SimCall, type SimValue } from './values.js';

/**
 * XML-RPC as xapi writes it: ocaml-rpc's encoder with `strict=false` (mirage/ocaml-rpc
 * src/lib/xmlrpc.ml:69-158; xapi calls `Xmlrpc.string_of_response` without `~strict`,
 * xapi-project/xen-api ocaml/xapi/api_server.ml:136). No whitespace anywhere.
 */

/**
 * String values: `> < & "` become entities, C0 controls other than TAB, LF and CR are dropped,
 * everything else (UTF-8 included) passes raw (ocaml-rpc src/lib/xmlrpc.ml:50-66).
 */
export function escapeXmlString(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[<>&"\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(s)) return s;
  // eslint-disable-next-line no-control-regex
  return s.replace(/[<>&"\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : ''));
}

export interface XmlEncodeOptions {
  /**
   * A pool member re-encodes the master's answer to a call it forwarded (api_server.ml:56-62,
   * api_server_common.ml:148-165): its parser reads `<i4>` back as `Rpc.Int`, which the strict=false
   * encoder writes as a bare `<value>N</value>` (ocaml-rpc xmlrpc.ml:71-77).
   */
  readonly forwarded?: boolean;
}

export function encodeXmlValue(v: SimValue, o: XmlEncodeOptions = {}): string {
  return o.forwarded === true ? encodeForwarded(v) : encodeCached(v);
}

const encodeCached = cachedEncoder((v) => encodeUncached(v, {}));
const encodeForwarded = (v: SimValue): string => encodeUncached(v, { forwarded: true });

function encodeUncached(v: SimValue, o: XmlEncodeOptions): string {
  if (typeof v === 'string') return `<value>${escapeXmlString(v)}</value>`;
  if (typeof v === 'number') return `<value>${String(Math.trunc(v))}</value>`;
  if (typeof v === 'boolean') return `<value><boolean>${v ? '1' : '0'}</boolean></value>`;
  if (v === null) return '<value><nil/></value>';
  if (v instanceof Double) return `<value><double>${formatG(v.value, 16)}</double></value>`;
  if (v instanceof DateTime) return `<value><dateTime.iso8601>${v.text}</dateTime.iso8601></value>`;
  if (v instanceof Int32) return o.forwarded === true ? `<value>${String(v.value)}</value>` : `<value><i4>${String(v.value)}</i4></value>`;
  if (Array.isArray(v)) {
    let out = '<value><array><data>';
    for (const e of v as readonly SimValue[]) out += encodeXmlValue(e, o);
    return `${out}</data></array></value>`;
  }
  let out = '<value><struct>';
  // Member names are written verbatim, NOT escaped (ocaml-rpc src/lib/xmlrpc.ml:107-113): a map
  // key `a&b` or `a<b` makes a reply no XML parser accepts, as on a real host.
  for (const [name, value] of Object.entries(v)) out += `<member><name>${name}</name>${encodeXmlValue(value, o)}</member>`;
  return `${out}</struct></value>`;
}

const HEAD = '<?xml version="1.0"?><methodResponse><params><param>';
const TAIL = '</param></params></methodResponse>';

/** `Dict [Status=Success; Value=v]` (ocaml-rpc xmlrpc.ml:143-151). */
export function encodeXmlSuccess(value: SimValue, o: XmlEncodeOptions = {}): string {
  return `${HEAD}<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>${encodeXmlValue(value, o)}</member></struct></value>${TAIL}`;
}

/** `Dict [Status=Failure; ErrorDescription=Enum [code; params…]]`. */
export function encodeXmlFailure(code: string, params: readonly string[]): string {
  return `${HEAD}<value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name>${encodeXmlValue([code, ...params])}</member></struct></value>${TAIL}`;
}

/** `system.listMethods` answers the bare value, without Status/Value (api_server.ml:124-134). */
export function encodeXmlBare(value: SimValue): string {
  return `${HEAD}${encodeXmlValue(value)}${TAIL}`;
}

// ------------------------------------------------------------------ request decoding

const ENTITY: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function unescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number.parseInt(e.slice(1), 10));
    const c = ENTITY[e];
    if (c === undefined) throw new WireParseError(`unknown entity ${m}`);
    return c;
  });
}

/**
 * A small pull parser over a `<methodCall>`: tags, text, `<x/>`; comments and the prolog skipped.
 * Lenient where ocaml-rpc's parser is (src/lib/xmlrpc.ml:281-370): a bare `<value>` is a string;
 * `<int>`, `<i4>`, `<i8>` are ints; `<double>` a number.
 */
class Reader {
  private pos = 0;
  constructor(private readonly src: string) {}

  private skipSpace(): void {
    for (;;) {
      while (this.pos < this.src.length && /\s/.test(this.src.charAt(this.pos))) this.pos += 1;
      if (this.src.startsWith('<?', this.pos)) this.pos = this.after('?>');
      else if (this.src.startsWith('<!--', this.pos)) this.pos = this.after('-->');
      else return;
    }
  }

  private after(end: string): number {
    const i = this.src.indexOf(end, this.pos);
    if (i < 0) throw new WireParseError(`unterminated ${end}`);
    return i + end.length;
  }

  /** The next tag's name if it opens (`<x>` or `<x/>`), without consuming it. */
  peekOpen(): string | undefined {
    this.skipSpace();
    const m = /^<([A-Za-z_][\w.:-]*)\s*\/?>/.exec(this.src.slice(this.pos, this.pos + 64));
    return m?.[1];
  }

  /** Consumes `<name>` (true) or `<name/>` (false: empty element). */
  open(name: string): boolean {
    this.skipSpace();
    const m = /^<([A-Za-z_][\w.:-]*)\s*(\/?)>/.exec(this.src.slice(this.pos, this.pos + 64));
    if (m?.[1] !== name) throw new WireParseError(`expected <${name}> at ${this.pos}`);
    this.pos += m[0].length;
    return m[2] !== '/';
  }

  close(name: string): void {
    this.skipSpace();
    const tag = `</${name}>`;
    if (!this.src.startsWith(tag, this.pos)) throw new WireParseError(`expected ${tag} at ${this.pos}`);
    this.pos += tag.length;
  }

  /** Text up to the next `<` (entities decoded). */
  text(): string {
    const i = this.src.indexOf('<', this.pos);
    if (i < 0) throw new WireParseError('unterminated text');
    const t = unescape(this.src.slice(this.pos, i));
    this.pos = i;
    return t;
  }

  /** `<name>text</name>` or `<name/>`. */
  element(name: string): string {
    if (!this.open(name)) return '';
    const t = this.text();
    this.close(name);
    return t;
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.pos >= this.src.length;
  }

  isClose(name: string): boolean {
    this.skipSpace();
    return this.src.startsWith(`</${name}>`, this.pos);
  }
}

function readValue(r: Reader): SimValue {
  if (!r.open('value')) return '';
  const inner = r.isClose('value') ? undefined : r.peekOpen();
  let v: SimValue;
  if (inner === undefined) v = r.isClose('value') ? '' : r.text();
  else if (inner === 'string' || inner === 'dateTime.iso8601' || inner === 'base64') v = r.element(inner);
  else if (inner === 'int' || inner === 'i4' || inner === 'i8') v = intOf(r.element(inner));
  else if (inner === 'double') v = Number(r.element(inner));
  else if (inner === 'boolean') v = r.element(inner).trim() === '1';
  else if (inner === 'nil') {
    if (r.open('nil')) r.close('nil');
    v = null;
  } else if (inner === 'array') v = readArray(r);
  else if (inner === 'struct') v = readStruct(r);
  else throw new WireParseError(`unknown value type <${inner}>`);
  r.close('value');
  return v;
}

function intOf(text: string): number {
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) throw new WireParseError(`bad int ${JSON.stringify(text)}`);
  return Number(t);
}

function readArray(r: Reader): SimValue[] {
  const out: SimValue[] = [];
  if (!r.open('array')) return out;
  if (r.open('data')) {
    while (!r.isClose('data')) out.push(readValue(r));
    r.close('data');
  }
  r.close('array');
  return out;
}

function readStruct(r: Reader): Record<string, SimValue> {
  const out: Record<string, SimValue> = {};
  if (!r.open('struct')) return out;
  while (!r.isClose('struct')) {
    r.open('member');
    const name = r.element('name');
    setMember(out, name, readValue(r));
    r.close('member');
  }
  r.close('struct');
  return out;
}

/** Parses a `<methodCall>`; `<params>` is required (xapi answers its absence with HTTP 500). */
export function decodeXmlCall(body: string): SimCall {
  const r = new Reader(body);
  r.open('methodCall');
  const method = r.element('methodName').trim();
  if (method === '') throw new WireParseError('empty methodName');
  const params: SimValue[] = [];
  if (r.open('params')) {
    while (!r.isClose('params')) {
      r.open('param');
      params.push(readValue(r));
      r.close('param');
    }
    r.close('params');
  }
  r.close('methodCall');
  if (!r.atEnd()) throw new WireParseError('trailing content after </methodCall>');
  return { method, params };
}
