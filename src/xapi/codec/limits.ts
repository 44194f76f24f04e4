import { CodedError } from '../../errors.js';

/**
 * XAPI reads at most 300 KiB of request body (docs/xapi.md §1.1, `constants.ml:421`): a call
 * whose encoding is larger is refused by the server, so the client refuses to send it.
 */
export const XAPI_MAX_REQUEST_BYTES = 300 * 1024;

/**
 * Throws `XAPI_REQUEST_TOO_LARGE` (permanent: repeating the call repeats the failure) when an encoded
 * request body exceeds {@link XAPI_MAX_REQUEST_BYTES}.
 */
export function assertRequestSize(body: string, method: string): string {
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > XAPI_MAX_REQUEST_BYTES) {
    throw new CodedError('XAPI_REQUEST_TOO_LARGE', `${method}: request body of ${bytes} bytes exceeds XAPI's ${XAPI_MAX_REQUEST_BYTES}-byte cap`);
  }
  return body;
}

/**
 * How deep XML-RPC values may nest. XAPI's deepest values are a map of records holding maps and sets
 * (a `get_all_records` reply: struct → struct → struct or array, about four levels); anything far deeper
 * is not XAPI, and bounding it keeps a hostile reply from costing the decoders their stack.
 */
export const XMLRPC_MAX_VALUE_DEPTH = 64;
