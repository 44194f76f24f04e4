import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonRpcCodec } from '../../../src/xapi/codec/jsonrpc.js';
import { xmlRpcCodec } from '../../../src/xapi/codec/xmlrpc.js';
import { XapiError, XapiTransportError } from '../../../src/xapi/errors.js';
import { createXapiTransport } from '../../../src/xapi/protocol-fallback.js';
import { createHttpTransport, describeEndpoint, parseXapiUrl, type XapiEndpoint } from '../../../src/xapi/transport.js';

const logger = pino({ level: 'silent' });

describe('parseXapiUrl', () => {
  it.each([
    ['unix:/var/lib/xcp/xapi', { kind: 'unix', socketPath: '/var/lib/xcp/xapi' }],
    ['http://pool-master', { kind: 'http', host: 'pool-master', port: 80 }],
    ['https://10.0.0.1:8443', { kind: 'https', host: '10.0.0.1', port: 8443 }],
    ['https://[fe80::1]', { kind: 'https', host: 'fe80::1', port: 443 }],
  ])('%s', (url, endpoint) => {
    expect(parseXapiUrl(url)).toEqual(endpoint);
  });
  it.each(['unix:', 'ftp://x', 'not a url', 'http://user:pw@host'])('rejects %s', (url) => {
    expect(() => parseXapiUrl(url)).toThrow(expect.objectContaining({ code: 'XAPI_URL_INVALID' }) as Error);
  });
  it('describes IPv6 endpoints with brackets', () => {
    expect(describeEndpoint({ kind: 'https', host: 'fe80::1', port: 443 })).toBe('https://[fe80::1]:443');
  });
});

type Behaviour = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;
let behaviour: Behaviour = () => {};
const seen: { path: string | undefined; headers: http.IncomingHttpHeaders; body: string }[] = [];
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    seen.push({ path: req.url, headers: req.headers, body });
    behaviour(req, body, res);
  });
});
const unixServer = http.createServer(server.listeners('request')[0] as http.RequestListener);
let dir = '';
let endpoints: [string, XapiEndpoint][] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xapi-transport-'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => unixServer.listen(join(dir, 'xapi'), r));
  endpoints = [
    ['tcp', { kind: 'http', host: '127.0.0.1', port: (server.address() as AddressInfo).port }],
    ['unix', { kind: 'unix', socketPath: join(dir, 'xapi') }],
  ];
});

afterAll(async () => {
  server.closeAllConnections();
  unixServer.closeAllConnections();
  await new Promise((r) => server.close(r));
  await new Promise((r) => unixServer.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const xmlOk = (value: string): string =>
  `<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>${value}</value></member></struct></value></param></params></methodResponse>`;

describe.each(['tcp', 'unix'])('HTTP transport over %s', (kind) => {
  const endpoint = (): XapiEndpoint => (endpoints.find(([k]) => k === kind) ?? [kind, endpoints[0]?.[1]])[1] as XapiEndpoint;
  const transport = (opts: { timeoutMs?: number; maxResponseBytes?: number; json?: boolean } = {}) =>
    createHttpTransport({ endpoint: endpoint(), codec: opts.json === true ? jsonRpcCodec : xmlRpcCodec, logger, timeoutMs: opts.timeoutMs ?? 2000, maxResponseBytes: opts.maxResponseBytes });

  it('posts XML-RPC to / and decodes the value, with sensible headers', async () => {
    behaviour = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(xmlOk('OpaqueRef:abc'));
    };
    const t = transport();
    expect(await t.call('session.login_with_password', ['u', 'p', '1.0', 'ovs-xapi-sync'])).toBe('OpaqueRef:abc');
    const last = seen.at(-1);
    expect(last?.path).toBe('/');
    expect(last?.body).toContain('<methodName>session.login_with_password</methodName>');
    expect(last?.headers['content-type']).toBe('text/xml');
    expect(last?.headers.host).toBeTruthy();
    expect(last?.headers.originator).toBe('ovs-xapi-sync');
    t.close();
  });

  it('posts JSON-RPC to /jsonrpc; a failure becomes XapiError', async () => {
    behaviour = (_req, body, res) => {
      const id = (JSON.parse(body) as { id: number }).id;
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: 1, message: 'UUID_INVALID', data: ['VIF', 'x'] }, id }));
    };
    const t = transport({ json: true });
    const err = await t.call('VIF.get_by_uuid', ['s', 'x']).catch((e: unknown) => e);
    expect(seen.at(-1)?.path).toBe('/jsonrpc');
    expect(err).toBeInstanceOf(XapiError);
    expect((err as XapiError).params).toEqual(['VIF', 'x']);
    t.close();
  });

  it('times out (XAPI_TIMEOUT) and destroys the request', async () => {
    let closed = false;
    behaviour = (req) => {
      req.socket.on('close', () => (closed = true));
    };
    const t = transport({ timeoutMs: 100 });
    await expect(t.call('event.from', [])).rejects.toMatchObject({ code: 'XAPI_TIMEOUT' });
    await expect.poll(() => closed, { timeout: 2000, interval: 10 }).toBe(true);
    t.close();
  });

  it('refuses an oversized reply (XAPI_RESPONSE_TOO_LARGE), with or without content-length', async () => {
    behaviour = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.write('x'.repeat(3000));
      res.end('x'.repeat(3000));
    };
    const t = transport({ maxResponseBytes: 4096 });
    await expect(t.call('VIF.get_all_records', [])).rejects.toMatchObject({ code: 'XAPI_RESPONSE_TOO_LARGE' });
    behaviour = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/xml', 'content-length': 6000 });
      res.end('x'.repeat(6000));
    };
    await expect(t.call('VIF.get_all_records', [])).rejects.toMatchObject({ code: 'XAPI_RESPONSE_TOO_LARGE' });
    t.close();
  });

  it('HTTP 500 with an HTML body → XAPI_HTTP with the status', async () => {
    behaviour = (_req, _body, res) => {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end('<html><body><h1>HTTP 500 internal server error</h1></body></html>');
    };
    const t = transport();
    const err = await t.call('x.y', []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XapiTransportError);
    expect(err).toMatchObject({ code: 'XAPI_HTTP', status: 500 });
    t.close();
  });

  it('wrong content type → XAPI_PROTOCOL; an old host answering /jsonrpc with text/xml is named', async () => {
    behaviour = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(xmlOk('x'));
    };
    const t = transport({ json: true });
    const err = await t.call('x.y', []).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'XAPI_PROTOCOL' });
    expect((err as Error).message).toMatch(/does not speak JSON-RPC/);
    t.close();
  });

  it('malformed body → XAPI_PROTOCOL, and the next call on the same transport works', async () => {
    let n = 0;
    behaviour = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(n++ === 0 ? '<methodResponse><params>' : xmlOk('fine'));
    };
    const t = transport();
    await expect(t.call('x.y', [])).rejects.toMatchObject({ code: 'XAPI_PROTOCOL' });
    expect(await t.call('x.y', [])).toBe('fine');
    t.close();
  });

  it('aborts a call in flight (long-poll) with ABORTED', async () => {
    behaviour = () => {};
    const t = transport({ timeoutMs: 10_000 });
    const controller = new AbortController();
    const p = t.call('event.from', [], { signal: controller.signal });
    setTimeout(() => {
      controller.abort();
    }, 20);
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    t.close();
  });

  it('keeps event.from off the connections other calls reuse: cancelling it leaves them warm', async () => {
    const connectionOf = new WeakMap<object, number>();
    let connections = 0;
    const served: { method: string; connection: number }[] = [];
    behaviour = (req, body, res) => {
      if (!connectionOf.has(req.socket)) connectionOf.set(req.socket, ++connections);
      const method = /<methodName>([^<]*)</.exec(body)?.[1] ?? '';
      served.push({ method, connection: connectionOf.get(req.socket) ?? 0 });
      if (method === 'event.from') return; // a long-poll with nothing to report
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(xmlOk('ok'));
    };
    const t = transport({ timeoutMs: 10_000 });
    await t.call('VIF.get_all_records_where', []);
    const controller = new AbortController();
    const poll = t.call('event.from', [], { signal: controller.signal });
    // Wait for the long-poll to reach the server (an event, not a time).
    while (served.at(-1)?.method !== 'event.from') await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await expect(poll).rejects.toMatchObject({ code: 'ABORTED' });
    await t.call('VM.get_all_records_where', []);
    t.close();
    const [first, longPoll, next] = served.slice(-3);
    expect(longPoll?.method).toBe('event.from');
    expect(longPoll?.connection).not.toBe(first?.connection);
    expect(next?.connection).toBe(first?.connection);
  });
});

describe('connection errors', () => {
  it('refused TCP connection → XAPI_TRANSPORT with the errno', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const t = createHttpTransport({ endpoint: { kind: 'http', host: '127.0.0.1', port }, codec: xmlRpcCodec, logger });
    const err = await t.call('x.y', []).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'XAPI_TRANSPORT' });
    expect((err as Error).message).toContain('ECONNREFUSED');
    t.close();
  });

  it('missing unix socket → XAPI_TRANSPORT with the errno', async () => {
    const t = createHttpTransport({ endpoint: { kind: 'unix', socketPath: join(tmpdir(), 'no-such-xapi-socket') }, codec: xmlRpcCodec, logger });
    const err = await t.call('x.y', []).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'XAPI_TRANSPORT' });
    expect((err as Error).message).toContain('ENOENT');
    t.close();
  });

  it('an unreadable CA file is a XAPI_URL_INVALID configuration error', () => {
    expect(() => createHttpTransport({ endpoint: { kind: 'https', host: 'h', port: 443 }, codec: xmlRpcCodec, logger, caFile: '/nonexistent/ca.pem' })).toThrow(
      expect.objectContaining({ code: 'XAPI_URL_INVALID' }) as Error,
    );
  });

  it('redirects an http transport to another host but not a unix one', () => {
    const t = createHttpTransport({ endpoint: { kind: 'https', host: 'member', port: 443 }, codec: xmlRpcCodec, logger, insecure: true });
    expect(t.withHost('10.0.0.1')?.endpoint).toEqual({ kind: 'https', host: '10.0.0.1', port: 443 });
    const u = createHttpTransport({ endpoint: { kind: 'unix', socketPath: '/x' }, codec: xmlRpcCodec, logger });
    expect(u.withHost('10.0.0.1')).toBeUndefined();
    t.close();
    u.close();
  });
});

/*
 * What xapi's HTTP server really answers, written as literal bytes (never through our codecs): the
 * JSON-RPC endpoint registered on every supported release (ocaml/idl/datamodel.ml:11237), a 404 from
 * a host without it (ocaml/libs/http-lib/http_svr.ml:134-140), JSON-RPC errors raised outside
 * dispatch (ocaml/xapi/api_server.ml:188-197), XML-RPC member names left unescaped.
 */
describe('xapi as it really answers (raw server)', () => {
  const tcp = (): XapiEndpoint => endpoints[0]?.[1] as XapiEndpoint;
  const XML_ODD_KEYS =
    '<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member>' +
    '<member><name>Value</name><value><struct><member><name>a&b</name><value>1</value></member><member><name>x<y</name><value>&lt;2&gt;</value></member></struct></value></member>' +
    '</struct></value></param></params></methodResponse>';
  const notFound = (res: http.ServerResponse): void => {
    res.writeHead(404, { connection: 'close', 'cache-control': 'no-cache, no-store' });
    res.end();
  };
  const xmlAtRoot = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    if (req.url !== '/') return false;
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(XML_ODD_KEYS);
    return true;
  };
  const capture = (): { logger: pino.Logger; warnings: () => string[] } => {
    const lines: string[] = [];
    return {
      logger: pino({ level: 'warn' }, { write: (l: string) => lines.push(l) }),
      warnings: () => lines.map((l) => (JSON.parse(l) as { msg: string; reason?: string }).msg + ' / ' + ((JSON.parse(l) as { reason?: string }).reason ?? '')),
    };
  };

  it.each([
    ['jsonrpc', jsonRpcCodec],
    ['xmlrpc', xmlRpcCodec],
  ] as const)('%s requests carry Content-Length, never a chunked body', async (_name, codec) => {
    behaviour = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': codec.contentType });
      res.end(codec === jsonRpcCodec ? '{"jsonrpc":"2.0","result":"ok","id":1}' : xmlOk('ok'));
    };
    const t = createHttpTransport({ endpoint: tcp(), codec, logger });
    await t.call('pool.get_all', ['OpaqueRef:s']);
    const last = seen.at(-1);
    expect(last?.headers['content-length']).toBe(String(Buffer.byteLength(last?.body ?? '')));
    expect(last?.headers['transfer-encoding']).toBeUndefined();
    t.close();
  });

  it('an XML-RPC reply with map keys holding & and < decodes, keys as stored', async () => {
    behaviour = (req, _body, res) => {
      xmlAtRoot(req, res);
    };
    const t = createHttpTransport({ endpoint: tcp(), codec: xmlRpcCodec, logger });
    expect(await t.call('VIF.get_other_config', ['OpaqueRef:s', 'OpaqueRef:v'])).toStrictEqual({ 'a&b': '1', 'x<y': '<2>' });
    t.close();
  });

  it('a JSON-RPC error raised outside dispatch (an array, with the request id) is the same XapiError', async () => {
    behaviour = (_req, body, res) => {
      const id = (JSON.parse(body) as { id: number }).id;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"jsonrpc":"2.0","error":["SESSION_INVALID","OpaqueRef:dead"],"id":${id}}`);
    };
    const t = createHttpTransport({ endpoint: tcp(), codec: jsonRpcCodec, logger });
    const err = await t.call('pool.get_all', ['OpaqueRef:dead']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XapiError);
    expect(err).toMatchObject({ code: 'SESSION_INVALID', params: ['OpaqueRef:dead'] });
    t.close();
  });

  it('auto: JSON-RPC first; a 404 on /jsonrpc falls back to XML-RPC once, logged at warn, for good', async () => {
    behaviour = (req, _body, res) => {
      if (!xmlAtRoot(req, res)) notFound(res);
    };
    const { logger: warnLogger, warnings } = capture();
    const t = createXapiTransport('auto', { endpoint: tcp(), logger: warnLogger });
    expect(t.protocol).toBe('jsonrpc');
    const before = seen.length;
    expect(await t.call('pool.get_all', ['OpaqueRef:s'])).toStrictEqual({ 'a&b': '1', 'x<y': '<2>' });
    expect(await t.call('pool.get_all', ['OpaqueRef:s'])).toStrictEqual({ 'a&b': '1', 'x<y': '<2>' });
    expect(seen.slice(before).map((r) => r.path)).toEqual(['/jsonrpc', '/', '/']);
    expect(t.protocol).toBe('xmlrpc');
    expect(warnings()).toEqual(['XAPI does not serve JSON-RPC; using XML-RPC from now on / the host answered /jsonrpc with HTTP 404']);
    // A redirect target (HOST_IS_SLAVE) of the same pool speaks what was decided.
    expect(t.withHost('127.0.0.1')?.protocol).toBe('xmlrpc');
    t.close();
  });

  it('auto: an old host answering /jsonrpc with its XML-RPC handler falls back too', async () => {
    behaviour = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(XML_ODD_KEYS);
    };
    const t = createXapiTransport('auto', { endpoint: tcp(), logger });
    const before = seen.length;
    expect(await t.call('pool.get_all', ['OpaqueRef:s'])).toStrictEqual({ 'a&b': '1', 'x<y': '<2>' });
    expect(seen.slice(before).map((r) => r.path)).toEqual(['/jsonrpc', '/']);
    t.close();
  });

  it('auto: a host in trouble (HTTP 500) is not a missing endpoint: no fallback', async () => {
    behaviour = (req, _body, res) => {
      if (xmlAtRoot(req, res)) return;
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end('<html>oops</html>');
    };
    const t = createXapiTransport('auto', { endpoint: tcp(), logger });
    const before = seen.length;
    await expect(t.call('pool.get_all', ['OpaqueRef:s'])).rejects.toMatchObject({ code: 'XAPI_HTTP', status: 500 });
    expect(seen.slice(before).map((r) => r.path)).toEqual(['/jsonrpc']);
    expect(t.protocol).toBe('jsonrpc');
    t.close();
  });

  it.each(['jsonrpc', 'xmlrpc'] as const)('forced %s never falls back', async (protocol) => {
    behaviour = (_req, _body, res) => {
      notFound(res);
    };
    const t = createXapiTransport(protocol, { endpoint: tcp(), logger });
    const before = seen.length;
    await expect(t.call('pool.get_all', ['OpaqueRef:s'])).rejects.toMatchObject({ code: 'XAPI_HTTP', status: 404 });
    expect(seen.slice(before).map((r) => r.path)).toEqual([protocol === 'jsonrpc' ? '/jsonrpc' : '/']);
    t.close();
  });
});
