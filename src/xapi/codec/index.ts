import { jsonRpcCodec } from './jsonrpc.js';
import type { XapiWireCodec } from './types.js';
import { xmlRpcCodec } from './xmlrpc.js';

export { jsonRpcCodec } from './jsonrpc.js';
export { xmlRpcCodec } from './xmlrpc.js';
export { XAPI_MAX_REQUEST_BYTES } from './limits.js';
export type { XapiCall, XapiStruct, XapiValue, XapiWireCodec } from './types.js';

/** The codec for a `--xapi-protocol` value. */
export function codecFor(protocol: 'xmlrpc' | 'jsonrpc'): XapiWireCodec {
  return protocol === 'jsonrpc' ? jsonRpcCodec : xmlRpcCodec;
}
