import { parseObject, request } from 'jsonrpc-lite';
import { XapiError, XapiTransportError } from '../errors.js';
import { assertRequestSize } from './limits.js';
import type { XapiCall, XapiValue, XapiWireCodec } from './types.js';

/*
 * JSON-RPC at `/jsonrpc` as XAPI speaks it (docs/xapi.md §1.4, §3). The client always sends
 * JSON-RPC 2.0; replies are accepted in every shape XAPI produces:
 *   V2 success  {"jsonrpc":"2.0","result":v,"id":id}
 *   V2 failure  {"jsonrpc":"2.0","error":{"code":1,"message":"CODE","data":["p1",…]},"id":id}
 *   odd V2      {"jsonrpc":"2.0","error":["CODE","p1",…],"id":0}   (errors raised outside dispatch,
 *               e.g. HOST_STILL_BOOTING; XAPI commit 7d4c00c3e2)
 *   V1          {"result":v,"error":null,"id":id} / {"result":null,"error":["CODE",…],"id":id}
 * JSON.parse creates `__proto__` as an own property, so decoded objects cannot pollute prototypes.
 * int64 values beyond 2^53 lose precision in JSON.parse (docs/xapi.md §3); XAPI's ids and counters
 * stay far below that.
 */

type JsonObject = Record<string, unknown>;

function protocolError(message: string, method?: string, cause?: unknown): XapiTransportError {
  return new XapiTransportError('XAPI_PROTOCOL', message, { method, cause });
}

function parseJson(body: string, method?: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw protocolError(`malformed JSON: ${err instanceof Error ? err.message : 'parse error'}`, method, err);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw protocolError('JSON-RPC message is not an object', method);
  return parsed as JsonObject;
}

function toParam(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function failureFromArray(error: readonly unknown[], method: string): XapiError {
  const [code, ...params] = error.map(toParam);
  if (code === undefined || code === '') throw protocolError('empty JSON-RPC error array', method);
  return new XapiError(code, params, method);
}

function decodeResponse(body: string, method: string): XapiValue {
  const msg = parseJson(body, method);
  const error = msg.error;
  if (error !== undefined && error !== null) {
    if (Array.isArray(error)) throw failureFromArray(error, method); // V1, or the odd V2 array form
    // V2 error object: validated by jsonrpc-lite (integer code, string message).
    const parsed = parseObject(msg);
    if ((parsed.type as string) !== 'error' || !('error' in parsed.payload)) throw protocolError('malformed JSON-RPC error object', method);
    const { message } = parsed.payload.error;
    const params: unknown = parsed.payload.error.data;
    throw new XapiError(message, Array.isArray(params) ? params.map(toParam) : params === undefined || params === null ? [] : [toParam(params)], method);
  }
  if (!Object.hasOwn(msg, 'result')) throw protocolError('JSON-RPC reply has neither result nor error', method);
  return msg.result as XapiValue;
}

function isValidId(id: unknown): id is string | number {
  return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id));
}

/**
 * Server side (docs/xapi.md §1.4, RPC `jsonrpc.ml:169-221`): no `jsonrpc` member → V1, which needs a
 * `params` array; `"2.0"` → V2, where `params` may be absent/null (→ []), an array, or an object
 * (→ one struct argument); anything else is malformed. A missing or null `id` is rejected:
 * XAPI does not support notifications.
 */
function decodeCall(body: string): XapiCall {
  const msg = parseJson(body);
  const { id, method } = msg;
  if (!isValidId(id)) throw protocolError('JSON-RPC request id must be an integer or a string');
  if (typeof method !== 'string' || method === '') throw protocolError('JSON-RPC request without a method');
  if (!Object.hasOwn(msg, 'jsonrpc')) {
    if (!Array.isArray(msg.params)) throw protocolError('JSON-RPC 1.0 request needs a params array', method);
    return { method, params: msg.params as XapiValue[], id, version: '1.0' };
  }
  if (msg.jsonrpc !== '2.0') throw protocolError(`unsupported jsonrpc version ${JSON.stringify(msg.jsonrpc)}`, method);
  const params = msg.params;
  // jsonrpc-lite checks the V2 request shape (string method, integer/string id, array/object params).
  const parsed = parseObject(params === null ? { ...msg, params: undefined } : msg);
  if ((parsed.type as string) !== 'request') throw protocolError('malformed JSON-RPC 2.0 request', method);
  const list: XapiValue[] = params === undefined || params === null ? [] : Array.isArray(params) ? (params as XapiValue[]) : [params as XapiValue];
  return { method, params: list, id, version: '2.0' };
}

/** JSON-RPC as XAPI speaks it; see the module comment. */
export const jsonRpcCodec: XapiWireCodec = {
  protocol: 'jsonrpc',
  path: '/jsonrpc',
  contentType: 'application/json',
  encodeCall(method, params, id) {
    return assertRequestSize(request(id, method, params).serialize(), method);
  },
  decodeResponse,
  decodeCall,
  encodeSuccess(value, call) {
    const id = call?.id ?? 0;
    if (call?.version === '1.0') return JSON.stringify({ result: value, error: null, id });
    return JSON.stringify({ jsonrpc: '2.0', result: value, id });
  },
  encodeFailure(code, params, call) {
    // Without a call, the failure happened outside dispatch: XAPI's odd V2 array form, id 0.
    if (call === undefined) return JSON.stringify({ jsonrpc: '2.0', error: [code, ...params], id: 0 });
    const id = call.id ?? 0;
    if (call.version === '1.0') return JSON.stringify({ result: null, error: [code, ...params], id });
    return JSON.stringify({ jsonrpc: '2.0', error: { code: 1, message: code, data: params }, id });
  },
};
