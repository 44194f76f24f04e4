import http from 'node:http';
import type { XapiValue, XapiWireCodec } from '../../../src/xapi/codec/types.js';

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP POST over TCP (url) or a unix socket (socketPath), without the project's client. */
export function post(target: { url?: string; socketPath?: string }, path: string, body: string, contentType = 'text/xml'): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const u = target.url !== undefined ? new URL(target.url) : undefined;
    const req = http.request(
      {
        method: 'POST',
        path,
        host: u?.hostname,
        port: u?.port,
        socketPath: target.socketPath,
        headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }); });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function call(target: { url?: string; socketPath?: string }, codec: XapiWireCodec, method: string, params: XapiValue[]): Promise<XapiValue> {
  const reply = await post(target, codec.path, codec.encodeCall(method, params, 1), codec.contentType);
  if (reply.status !== 200) throw new Error(`HTTP ${reply.status}`);
  return codec.decodeResponse(reply.body, method);
}

export async function failure(p: Promise<unknown>): Promise<{ code: string; params: readonly string[] }> {
  try {
    await p;
  } catch (err) {
    return err as { code: string; params: readonly string[] };
  }
  throw new Error('expected a failure');
}

/** A JSON-RPC call decoded with JSON.parse only (independent of the project's codecs). */
export async function jsonRpc(
  target: { url?: string; socketPath?: string },
  method: string,
  params: unknown[],
  options: { version?: '1.0' | '2.0'; id?: number | string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const request = { ...(options.version === '2.0' ? { jsonrpc: '2.0' } : {}), method, params, id: options.id ?? 1 };
  const reply = await post(target, '/jsonrpc', JSON.stringify(request), 'application/json');
  return { status: reply.status, body: reply.status === 200 ? (JSON.parse(reply.body) as Record<string, unknown>) : { html: reply.body } };
}

/** The `result` of a JSON-RPC call; throws the `error` (array or object) when it failed. */
export async function jsonResult(target: { url?: string; socketPath?: string }, method: string, params: unknown[]): Promise<unknown> {
  const { status, body } = await jsonRpc(target, method, params);
  if (status !== 200) throw new Error(`HTTP ${status}`);
  if (body.error !== null && body.error !== undefined) throw Object.assign(new Error(JSON.stringify(body.error)), { error: body.error });
  return body.result;
}
