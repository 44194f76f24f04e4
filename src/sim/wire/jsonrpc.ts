import { cachedEncoder, DateTime, Double, formatG, Int32, isStruct, setMember, WireParseError, type SimCall, type SimValue } from './values.js';

/**
 * JSON-RPC as xapi writes it: `Jsonrpc.string_of_response` (mirage/ocaml-rpc src/lib/jsonrpc.ml:106-128),
 * i.e. `Rpc.t` → Yojson (jsonrpc.ml:40-51) → `Yojson.Safe.to_string`: no whitespace, ints as bare
 * literals, floats always with a `.` or exponent, datetimes as strings.
 */

/** Yojson's string escaping: `"` `\` and the short escapes, other C0 controls and DEL as `\u00xx`. */
export function escapeJsonString(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/["\\\u0000-\u001f\u007f]/.test(s)) return `"${s}"`;
  // eslint-disable-next-line no-control-regex
  const body = s.replace(/["\\\u0000-\u001f\u007f]/g, (c) => {
    switch (c) {
      case '"':
        return '\\"';
      case '\\':
        return '\\\\';
      case '\b':
        return '\\b';
      case '\f':
        return '\\f';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
  return `"${body}"`;
}

/** Yojson's float: `%.16g`, `%.17g` when that does not read back, `.0` appended to an integral form. */
export function formatJsonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  let s = formatG(x, 16);
  if (Number(s) !== x) s = formatG(x, 17);
  return /^-?\d+$/.test(s) ? `${s}.0` : s;
}

export const encodeJsonValue: (v: SimValue) => string = cachedEncoder(encodeUncached);

function encodeUncached(v: SimValue): string {
  if (typeof v === 'string') return escapeJsonString(v);
  if (typeof v === 'number') return String(Math.trunc(v));
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === null) return 'null';
  if (v instanceof Double) return formatJsonFloat(v.value);
  if (v instanceof DateTime) return escapeJsonString(v.text);
  if (v instanceof Int32) return String(v.value);
  if (Array.isArray(v)) return `[${(v as readonly SimValue[]).map(encodeJsonValue).join(',')}]`;
  let out = '{';
  let first = true;
  for (const [k, e] of Object.entries(v)) {
    out += `${first ? '' : ','}${escapeJsonString(k)}:${encodeJsonValue(e)}`;
    first = false;
  }
  return `${out}}`;
}

type Id = string | number;
const idJson = (id: Id | undefined): string => (id === undefined ? '0' : encodeJsonValue(id));

/** V1 `{"result":v,"error":null,"id":id}`, V2 `{"jsonrpc":"2.0","result":v,"id":id}` (jsonrpc.ml:106-116). */
export function encodeJsonSuccess(value: SimValue, call: Pick<SimCall, 'id' | 'version'>): string {
  const v = encodeJsonValue(value);
  return call.version === 'V2' ? `{"jsonrpc":"2.0","result":${v},"id":${idJson(call.id)}}` : `{"result":${v},"error":null,"id":${idJson(call.id)}}`;
}

/**
 * How a failure is shaped depends on where xapi raised it:
 * - `dispatched`: inside dispatch; V2 errors become `{code:1,message,data}` (api_server.ml:27-48,
 *   `error_code_lit`, api_server_common.ml:192-195); V1 errors stay an array.
 * - `forwarded`: a pool member forwarded the call to the master; the answer bypasses that
 *   translation (api_server.ml:53-62), so V2 carries the error as an ARRAY with the request id.
 * - `outside`: raised before dispatch (emergency mode, HOST_STILL_BOOTING): `jsoncallback` answers V2
 *   with an array and id 0, whatever the request said (api_server.ml:188-198).
 */
export type JsonFailureOrigin = 'dispatched' | 'forwarded' | 'outside';

export function encodeJsonFailure(code: string, params: readonly string[], call: Pick<SimCall, 'id' | 'version'> | undefined, origin: JsonFailureOrigin = 'dispatched'): string {
  const array = encodeJsonValue([code, ...params]);
  if (origin === 'outside' || call === undefined) return `{"jsonrpc":"2.0","error":${array},"id":0}`;
  if (call.version !== 'V2') return `{"result":null,"error":${array},"id":${idJson(call.id)}}`;
  if (origin === 'forwarded') return `{"jsonrpc":"2.0","error":${array},"id":${idJson(call.id)}}`;
  return `{"jsonrpc":"2.0","error":{"code":1,"message":${escapeJsonString(code)},"data":${encodeJsonValue(params)}},"id":${idJson(call.id)}}`;
}

function toSim(v: unknown): SimValue {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map(toSim);
  if (typeof v === 'object') {
    const out: Record<string, SimValue> = {};
    for (const [k, e] of Object.entries(v as Record<string, unknown>)) setMember(out, k, toSim(e));
    return out;
  }
  throw new WireParseError('unsupported JSON value');
}

/**
 * `Jsonrpc.version_id_and_call_of_string` (ocaml-rpc src/lib/jsonrpc.ml:169-221): no `jsonrpc`
 * member is V1, `"2.0"` is V2, anything else malformed; V1 needs a `params` array, V2 takes none,
 * null, an array or one object; `id` must be an int or a string (no notifications).
 */
export function decodeJsonCall(body: string): SimCall {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    throw new WireParseError(`malformed JSON: ${(err as Error).message}`);
  }
  const d = toSim(json);
  if (!isStruct(d)) throw new WireParseError('Invalid request body');
  const method = d.method;
  if (typeof method !== 'string') throw new WireParseError("Invalid field 'method' in request body");
  let version: 'V1' | 'V2';
  if (!Object.hasOwn(d, 'jsonrpc')) version = 'V1';
  else if (d.jsonrpc === '2.0') version = 'V2';
  else throw new WireParseError("Invalid field 'jsonrpc' in request body");
  const p = Object.hasOwn(d, 'params') ? d.params : undefined;
  let params: readonly SimValue[];
  if (Array.isArray(p)) params = p as readonly SimValue[];
  else if (version === 'V2' && (p === undefined || p === null)) params = [];
  else if (version === 'V2' && isStruct(p)) params = [p];
  else throw new WireParseError("Invalid field 'params' in request body");
  const id = Object.hasOwn(d, 'id') ? d.id : undefined;
  if (!(typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id)))) throw new WireParseError("Invalid field 'id' in request body");
  return { method, params, id, version };
}
