import { decodeJsonCall, encodeJsonFailure, encodeJsonSuccess, type JsonFailureOrigin } from './jsonrpc.js';
import type { SimCall, SimValue } from './values.js';
import { decodeXmlCall, encodeXmlBare, encodeXmlFailure, encodeXmlSuccess } from './xmlrpc.js';

export * from './values.js';
export { encodeXmlValue, encodeXmlSuccess, encodeXmlFailure, encodeXmlBare, decodeXmlCall, escapeXmlString } from './xmlrpc.js';
export { encodeJsonValue, encodeJsonSuccess, encodeJsonFailure, decodeJsonCall, escapeJsonString, formatJsonFloat } from './jsonrpc.js';
export type { JsonFailureOrigin } from './jsonrpc.js';

/** One of xapi's two RPC handlers: XML-RPC at `/` and `/RPC2`, JSON-RPC at `/jsonrpc`. */
export interface SimProtocol {
  readonly name: 'xmlrpc' | 'jsonrpc';
  readonly contentType: string;
  decode(body: string): SimCall;
  success(value: SimValue, call: SimCall, o: { forwarded?: boolean; bare?: boolean }): string;
  failure(code: string, params: readonly string[], call: SimCall | undefined, origin: JsonFailureOrigin): string;
}

export const xmlRpc: SimProtocol = {
  name: 'xmlrpc',
  contentType: 'text/xml',
  decode: decodeXmlCall,
  success: (value, _call, o) => (o.bare === true ? encodeXmlBare(value) : encodeXmlSuccess(value, o)),
  failure: (code, params) => encodeXmlFailure(code, params),
};

export const jsonRpc: SimProtocol = {
  name: 'jsonrpc',
  contentType: 'application/json',
  decode: decodeJsonCall,
  success: (value, call) => encodeJsonSuccess(value, call),
  failure: (code, params, call, origin) => encodeJsonFailure(code, params, call, origin),
};

/**
 * Handlers are matched by longest URI prefix (xapi-project/xen-api ocaml/libs/http-lib/http_svr.ml:532,
 * bindings in ocaml/xapi/xapi.ml:868-874): `/jsonrpc…` is JSON-RPC, every other POST path XML-RPC.
 */
export function protocolFor(path: string): SimProtocol {
  return path.startsWith('/jsonrpc') ? jsonRpc : xmlRpc;
}
