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
