import type { XapiValue } from './codec/types.js';
import { jsonRpcCodec, xmlRpcCodec } from './codec/index.js';
import { XapiTransportError } from './errors.js';
import { createHttpTransport, describeEndpoint, XapiContentTypeError, type HttpTransportOptions, type XapiCallOptions, type XapiEndpoint, type XapiTransport } from './transport.js';

/**
 * `--xapi-protocol`: `auto` (the default) speaks JSON-RPC and falls back to XML-RPC once when the host
 * refuses `/jsonrpc`; `jsonrpc` and `xmlrpc` force one protocol, without fallback.
 *
 * xapi serves JSON-RPC at `/jsonrpc` on every supported release (xapi-project/xen-api
 * ocaml/idl/datamodel.ml:11237 `post_jsonrpc`, handled by ocaml/xapi/xapi.ml:871); its replies are smaller and
 * carry map keys as JSON strings, where XML-RPC writes them unescaped (mirage/ocaml-rpc
 * src/lib/xmlrpc.ml:106-110).
 */
export type XapiProtocolChoice = 'auto' | 'jsonrpc' | 'xmlrpc';

/**
 * HTTP answers that mean "no JSON-RPC here": no handler for the path (xapi's http_svr answers an
 * unknown URI 404, ocaml/libs/http-lib/http_svr.ml:134-140), the method or media type refused, or
 * not implemented. A 5xx other than 501 is a host in trouble, not a missing endpoint.
 */
const NO_JSONRPC_STATUS = new Set([400, 404, 405, 406, 415, 501]);

/** Why `err` says the host does not speak JSON-RPC, or undefined when it says something else. */
export function jsonRpcRefusal(err: unknown): string | undefined {
  if (err instanceof XapiContentTypeError && err.contentType === 'text/xml') return 'the host answered /jsonrpc with XML-RPC';
  if (err instanceof XapiTransportError && err.code === 'XAPI_HTTP' && err.status !== undefined && NO_JSONRPC_STATUS.has(err.status)) return `the host answered /jsonrpc with HTTP ${err.status}`;
  return undefined;
}

/** The one decision of a session and of every host it is redirected to: shared, made once. */
interface Decision {
  fellBack: boolean;
}

/** JSON-RPC until the host refuses it, then XML-RPC for good (logged once, at warn). */
class ProtocolFallbackTransport implements XapiTransport {
  readonly endpoint: XapiEndpoint;
  private json: XapiTransport | undefined;
  private xml: XapiTransport | undefined;

  constructor(
    private readonly options: Omit<HttpTransportOptions, 'codec'>,
    private readonly decision: Decision,
  ) {
    this.endpoint = options.endpoint;
    if (decision.fellBack) this.xml = createHttpTransport({ ...options, codec: xmlRpcCodec });
    else this.json = createHttpTransport({ ...options, codec: jsonRpcCodec });
  }

  get protocol(): 'xmlrpc' | 'jsonrpc' {
    return this.xml === undefined ? 'jsonrpc' : 'xmlrpc';
  }

  async call(method: string, params: readonly XapiValue[], options?: XapiCallOptions): Promise<XapiValue> {
    if (this.json === undefined) return this.xmlTransport().call(method, params, options);
    try {
      return await this.json.call(method, params, options);
    } catch (err) {
      const reason = jsonRpcRefusal(err);
      if (reason === undefined) throw err;
      if (!this.decision.fellBack) {
        this.decision.fellBack = true;
        this.options.logger.warn({ xapi: describeEndpoint(this.endpoint), reason }, 'XAPI does not serve JSON-RPC; using XML-RPC from now on');
      }
      this.json.close();
      this.json = undefined;
      return this.xmlTransport().call(method, params, options);
    }
  }

  withHost(host: string): XapiTransport | undefined {
    if (this.endpoint.kind === 'unix') return undefined;
    return new ProtocolFallbackTransport({ ...this.options, endpoint: { ...this.endpoint, host: host.replace(/^\[(.*)\]$/, '$1') } }, this.decision);
  }

  close(): void {
    this.json?.close();
    this.xml?.close();
  }

  private xmlTransport(): XapiTransport {
    this.xml ??= createHttpTransport({ ...this.options, codec: xmlRpcCodec });
    return this.xml;
  }
}

/** The transport for a `--xapi-protocol` choice. Throws `XAPI_URL_INVALID` for a bad CA file. */
export function createXapiTransport(protocol: XapiProtocolChoice, options: Omit<HttpTransportOptions, 'codec'>): XapiTransport {
  if (protocol === 'auto') return new ProtocolFallbackTransport(options, { fellBack: false });
  return createHttpTransport({ ...options, codec: protocol === 'jsonrpc' ? jsonRpcCodec : xmlRpcCodec });
}

