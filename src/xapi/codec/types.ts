/**
 * A value as XAPI carries it on the wire, after decoding and before typing by schema.
 *
 * XML-RPC (docs/xapi.md §2): strings and int64 both arrive as bare `<value>text</value>` and
 * decode to `string`; `<i4>`/`<int>`/`<double>` to `number`; `<boolean>` to `boolean`;
 * `<dateTime.iso8601>` to its text (e.g. `20250319T04:16:24Z`); `<array>` to an array; `<struct>`
 * to a plain object; `<nil/>` to `null`. JSON-RPC yields the same shapes except that ints arrive as
 * numbers; the typed-record layer (../records.ts) normalises by schema, so callers never see the
 * difference.
 */
export type XapiValue = string | number | boolean | null | readonly XapiValue[] | XapiStruct;
export interface XapiStruct {
  readonly [key: string]: XapiValue;
}

/** A decoded method call, as the simulator receives it. */
export interface XapiCall {
  readonly method: string;
  readonly params: readonly XapiValue[];
  /** JSON-RPC only: the request id to echo, and the protocol version to answer in. */
  readonly id?: string | number;
  readonly version?: '1.0' | '2.0';
}

/**
 * One wire protocol, both directions. The client uses `encodeCall`/`decodeResponse`; the simulator
 * uses `decodeCall`/`encodeSuccess`/`encodeFailure`. Decoders never throw anything but
 * `XapiError` (an XAPI failure answer) or `XapiTransportError` with code `XAPI_PROTOCOL`.
 */
export interface XapiWireCodec {
  readonly protocol: 'xmlrpc' | 'jsonrpc';
  /** HTTP path the client posts to: `/` for XML-RPC, `/jsonrpc` for JSON-RPC. */
  readonly path: string;
  /** Content-Type the server sends and the client expects. */
  readonly contentType: string;
  encodeCall(method: string, params: readonly XapiValue[], id: number): string;
  /** Returns the `Value` of a success; throws `XapiError` for a failure. */
  decodeResponse(body: string, method: string): XapiValue;
  decodeCall(body: string): XapiCall;
  encodeSuccess(value: XapiValue, call?: XapiCall): string;
  encodeFailure(code: string, params: readonly string[], call?: XapiCall): string;
}
