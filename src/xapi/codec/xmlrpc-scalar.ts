import { XapiTransportError } from '../errors.js';
import type { XapiValue } from './types.js';

/*
 * The meaning of a typed XML-RPC scalar, shared by the xml2js reference decoder (./xmlrpc.ts) and the
 * single-pass scanner (./xmlrpc-fast.ts) so that both give the same value or the same error for the
 * same text (docs/xapi.md §2, "Inbound parsing").
 */

export function xmlRpcProtocolError(message: string, method?: string, cause?: unknown): XapiTransportError {
  return new XapiTransportError('XAPI_PROTOCOL', message, { method, cause });
}

const INTEGER = /^[+-]?\d+$/;

/**
 * The value of `<tag>text</tag>` inside a `<value>`, `text` being the element's decoded character data.
 * Returns `undefined` for a tag that is not an XML-RPC scalar (`array`, `struct`, unknown names);
 * throws `XAPI_PROTOCOL` for a scalar whose text does not parse.
 */
export function decodeScalar(tag: string, text: string, method?: string): XapiValue | undefined {
  switch (tag) {
    case 'string':
    case 'dateTime.iso8601': // XAPI's format has no dashes (`20250319T04:16:24Z`): kept as text
    case 'base64':
      return text;
    case 'i4':
    case 'int':
    case 'i8': {
      const t = text.trim();
      if (!INTEGER.test(t)) throw xmlRpcProtocolError(`bad <${tag}> ${JSON.stringify(t)}`, method);
      const n = Number(t);
      // An int64 beyond 2^53 cannot be a JS number without loss: keep its decimal text.
      return Number.isSafeInteger(n) ? n : t.replace(/^\+/, '');
    }
    case 'boolean':
      return text.trim() === '1'; // rpclib: only `1` is true (docs/xapi.md §2)
    case 'double': {
      const t = text.trim();
      const n = Number(t);
      if (t === '' || Number.isNaN(n)) throw xmlRpcProtocolError(`bad <double> ${JSON.stringify(t)}`, method);
      return n;
    }
    case 'nil':
      return null;
    default:
      return undefined;
  }
}
