import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type https from 'node:https';
import type { Logger } from 'pino';
import { AbortedError } from '../errors.js';
import { http as httpModule, httpsModule } from '../node-builtins.js';
import type { XapiValue, XapiWireCodec } from './codec/types.js';
import { XapiTransportError } from './errors.js';

/** Where XAPI listens: dom0's local socket (docs/xapi.md §1.2) or a TCP host (§1.1). */
export type XapiEndpoint =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | { readonly kind: 'http' | 'https'; readonly host: string; readonly port: number };

export const DEFAULT_XAPI_URL = 'unix:/var/lib/xcp/xapi';
/** Replies above this are refused (`XAPI_RESPONSE_TOO_LARGE`); pool-wide dumps are never requested. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** XAPI's per-originator session cap protects a named client from anonymous churn (docs/xapi.md §4). */
export const XAPI_ORIGINATOR = 'ovs-xapi-sync';

/** Parses `unix:PATH`, `http://HOST[:PORT]` or `https://HOST[:PORT]`; throws `XAPI_URL_INVALID`. */
export function parseXapiUrl(url: string): XapiEndpoint {
  if (url.startsWith('unix:')) {
    const socketPath = url.slice('unix:'.length);
    if (socketPath === '' || socketPath.includes('\0')) throw new XapiTransportError('XAPI_URL_INVALID', `invalid unix socket path in XAPI URL "${url}"`);
    return { kind: 'unix', socketPath };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new XapiTransportError('XAPI_URL_INVALID', `cannot parse XAPI URL "${url}" (expected unix:PATH, http://HOST[:PORT] or https://HOST[:PORT])`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new XapiTransportError('XAPI_URL_INVALID', `unsupported XAPI URL scheme "${parsed.protocol}" in "${url}"`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new XapiTransportError('XAPI_URL_INVALID', 'credentials in the XAPI URL are not supported; use the user and password options');
  }
  if (parsed.hostname === '') throw new XapiTransportError('XAPI_URL_INVALID', `missing host in XAPI URL "${url}"`);
  const kind = parsed.protocol === 'https:' ? 'https' : 'http';
  const port = parsed.port === '' ? (kind === 'https' ? 443 : 80) : Number(parsed.port);
  // URL keeps IPv6 literals bracketed; node:http wants them bare.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return { kind, host, port };
}

/** A loggable description of an endpoint (no secrets live in endpoints). */
export function describeEndpoint(e: XapiEndpoint): string {
  if (e.kind === 'unix') return `unix:${e.socketPath}`;
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  return `${e.kind}://${host}:${e.port}`;
}

/** `XAPI_PROTOCOL`: the reply's Content-Type is not the protocol's (`contentType` is what came). */
export class XapiContentTypeError extends XapiTransportError {
  constructor(
    message: string,
    method: string,
    readonly contentType: string,
  ) {
    super('XAPI_PROTOCOL', message, { method });
  }
}

export interface XapiCallOptions {
  readonly signal?: AbortSignal | undefined;
  /** Overrides the transport's default per-call timeout (the event long-poll needs a longer one). */
  readonly timeoutMs?: number | undefined;
}

/** One XAPI method call over one wire protocol: encode, POST, check, decode. */
export interface XapiTransport {
  readonly endpoint: XapiEndpoint;
  /** The protocol calls go out in now (an `auto` transport may change it once, ./protocol-fallback.ts). */
  readonly protocol: 'xmlrpc' | 'jsonrpc';
  call(method: string, params: readonly XapiValue[], options?: XapiCallOptions): Promise<XapiValue>;
  /**
   * The same transport aimed at another host, for `HOST_IS_SLAVE [master]` (docs/xapi.md §4).
   * `undefined` for a unix socket: the local socket forwards to the master itself (§1.2).
   */
  withHost(host: string): XapiTransport | undefined;
  close(): void;
}

export interface HttpTransportOptions {
  readonly endpoint: XapiEndpoint;
  readonly codec: XapiWireCodec;
  readonly logger: Logger;
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
  /** PEM file with the CA(s) that sign XAPI's certificate (https only). */
  readonly caFile?: string | undefined;
  /** Skip certificate verification (https only); a warning is logged once. */
  readonly insecure?: boolean | undefined;
}

interface TlsState {
  readonly ca: Buffer | undefined;
  warned: boolean;
}

/**
 * HTTP/1.1 POST transport over node:http(s) with a keep-alive agent: XAPI pays ~100 ms per new
 * connection on a busy host (docs/xapi.md §1.3, CP-48623), so connections are reused.
 */
export function createHttpTransport(options: HttpTransportOptions): XapiTransport {
  let ca: Buffer | undefined;
  if (options.endpoint.kind === 'https' && options.caFile !== undefined) {
    try {
      ca = readFileSync(options.caFile);
    } catch (err) {
      throw new XapiTransportError('XAPI_URL_INVALID', `cannot read XAPI CA file ${options.caFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  return new HttpTransport(options, { ca, warned: false });
}

let nextRequestId = 1;

/** XAPI's blocking call (docs/xapi.md §5.1): it answers when an event arrives or its timeout expires. */
const LONG_POLL_METHOD = 'event.from';

class HttpTransport implements XapiTransport {
  readonly endpoint: XapiEndpoint;
  readonly protocol: 'xmlrpc' | 'jsonrpc';
  private readonly agent: http.Agent;
  /**
   * `event.from` alone: the long-poll holds its connection for up to its timeout, and cancelling it
   * (a resubscription, a resync, stop) can only close that connection, since HTTP/1.1 has no way to
   * abandon a request in flight (RFC 9112 §9.6). On a pool of its own it never takes, or destroys, a
   * warm connection that the next lookup would use.
   */
  private readonly longPollAgent: http.Agent;
  /** `https.request` for an https endpoint, else `http.request`. */
  private readonly request: typeof http.request;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(
    private readonly options: HttpTransportOptions,
    private readonly tls: TlsState,
  ) {
    this.endpoint = options.endpoint;
    this.protocol = options.codec.protocol;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    if (this.endpoint.kind === 'https') {
      const insecure = options.insecure === true;
      if (insecure && !tls.warned) {
        tls.warned = true;
        options.logger.warn({ xapi: describeEndpoint(this.endpoint) }, 'XAPI TLS certificate verification is DISABLED (insecure option)');
      }
      const agentOptions: https.AgentOptions = { keepAlive: true, ca: tls.ca, rejectUnauthorized: !insecure };
      const https_ = httpsModule();
      this.agent = new https_.Agent(agentOptions);
      this.longPollAgent = new https_.Agent(agentOptions);
      this.request = https_.request;
    } else {
      this.agent = new httpModule.Agent({ keepAlive: true });
      this.longPollAgent = new httpModule.Agent({ keepAlive: true });
      this.request = httpModule.request;
    }
  }

  withHost(host: string): XapiTransport | undefined {
    if (this.endpoint.kind === 'unix') return undefined;
    const bare = host.replace(/^\[(.*)\]$/, '$1');
    return new HttpTransport({ ...this.options, endpoint: { ...this.endpoint, host: bare } }, this.tls);
  }

  close(): void {
    this.agent.destroy();
    this.longPollAgent.destroy();
  }

  call(method: string, params: readonly XapiValue[], options: XapiCallOptions = {}): Promise<XapiValue> {
    const codec = this.options.codec;
    // The encoders throw XAPI_PROTOCOL / XAPI_REQUEST_TOO_LARGE synchronously; surface them as rejections.
    let body: string;
    try {
      body = codec.encodeCall(method, params, nextRequestId++);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(new AbortedError(`${method}: aborted`));
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const endpoint = this.endpoint;
    const headers: http.OutgoingHttpHeaders = {
      'content-type': codec.contentType,
      'content-length': Buffer.byteLength(body),
      accept: codec.contentType,
      // XenAPI.py sends the same header (docs/xapi.md §1.3); XAPI attributes the call to us.
      originator: XAPI_ORIGINATOR,
    };
    const requestOptions: http.RequestOptions = {
      method: 'POST',
      path: codec.path,
      headers,
      agent: method === LONG_POLL_METHOD ? this.longPollAgent : this.agent,
    };
    if (endpoint.kind === 'unix') {
      requestOptions.socketPath = endpoint.socketPath;
      // A unix socket has no host name; XenAPI.py's UDSTransport sends a placeholder too (§1.3).
      headers.host = 'localhost';
    } else {
      requestOptions.host = endpoint.host;
      requestOptions.port = endpoint.port;
    }
    const request = this.request;
    const maxBytes = this.maxResponseBytes;

    return new Promise<XapiValue>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, value?: XapiValue): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err !== undefined) {
          req.destroy();
          reject(err);
        } else resolve(value ?? null);
      };
      const onAbort = (): void => {
        finish(new AbortedError(`${method}: aborted`));
      };

      const req = request(requestOptions, (res) => {
        const status = res.statusCode ?? 0;
        const contentType = (res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
        if (status !== 200) {
          res.resume();
          finish(new XapiTransportError('XAPI_HTTP', `HTTP ${status} from ${describeEndpoint(endpoint)}`, { method, status }));
          return;
        }
        if (contentType !== codec.contentType) {
          res.resume();
          // An old host answers /jsonrpc with its XML-RPC handler (docs/xapi.md §1.1).
          const hint = codec.protocol === 'jsonrpc' && contentType === 'text/xml' ? ' (this XAPI does not speak JSON-RPC; use xmlrpc)' : '';
          finish(new XapiContentTypeError(`unexpected content type "${contentType}", expected "${codec.contentType}"${hint}`, method, contentType));
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          finish(new XapiTransportError('XAPI_RESPONSE_TOO_LARGE', `reply of ${declared} bytes exceeds the ${maxBytes}-byte cap`, { method }));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            finish(new XapiTransportError('XAPI_RESPONSE_TOO_LARGE', `reply exceeds the ${maxBytes}-byte cap`, { method }));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err) => {
          finish(new XapiTransportError('XAPI_TRANSPORT', `reply interrupted: ${err.message}`, { method, cause: err }));
        });
        res.on('aborted', () => {
          finish(new XapiTransportError('XAPI_TRANSPORT', 'reply interrupted (connection closed)', { method }));
        });
        res.on('end', () => {
          if (settled) return;
          try {
            const value = codec.decodeResponse(Buffer.concat(chunks).toString('utf8'), method);
            finish(undefined, value);
          } catch (err) {
            finish(err as Error);
          }
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const errno = err.code !== undefined && !err.message.includes(err.code) ? ` (${err.code})` : '';
        finish(new XapiTransportError('XAPI_TRANSPORT', `cannot reach XAPI at ${describeEndpoint(endpoint)}: ${err.message}${errno}`, { method, cause: err }));
      });
      const timer = setTimeout(() => {
        finish(new XapiTransportError('XAPI_TIMEOUT', `no reply within ${timeoutMs} ms`, { method }));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end(body);
    });
  }
}
