import type http from 'node:http';
import { SimAborted, SimFailure, type CallContext, type SimApi } from './api.js';
import type { SimState } from './state.js';
import { BODY_TOO_LARGE, NO_CONTENT_LENGTH, sendInternalError, sendNotFound } from './wire/http.js';
import { jsonRpc, MAX_RPC_REQUEST_BYTES, protocolFor, WireParseError, type SimCall, type SimProtocol } from './wire/index.js';
import { readBody } from './listener.js';

/** Fault settings shared by every endpoint of one simulator (see `SimFaultSettings`). */
export interface EndpointFaults {
  latencyMs: number;
  malformedEvery: number;
  http500: boolean | number;
  hostStillBooting: boolean;
  /** `/jsonrpc` answers HTTP 404, as a host without a JSON-RPC handler. */
  jsonRpcNotFound: boolean;
}

export interface EndpointCounters {
  calls: Record<string, number>;
  totalCalls: number;
  bytesIn: number;
  bytesOut: number;
  replies: number;
}

export interface EndpointContext {
  readonly api: SimApi;
  readonly state: SimState;
  readonly faults: EndpointFaults;
  readonly counters: EndpointCounters;
}

/**
 * Calls a member serves itself instead of forwarding them to the master (`Datamodel.whitelist`,
 * xapi-project/xen-api ocaml/idl/datamodel.ml:10813-10843; the ones the simulator knows).
 */
const MEMBER_LOCAL = new Set(['session.login_with_password', 'session.logout', 'system.listMethods']);

/**
 * The RPC handler of one host's endpoint. `via` says which listener the request came in on: over TCP a
 * member refuses everything with `HOST_IS_SLAVE [master address]` (xapi_session.ml:996-1003,
 * session_check.ml:52-99); on its unix socket it serves login itself and forwards the rest to the
 * master (api_server.ml:53-62), whose answer it re-encodes (forwarded quirks, see the wire encoders).
 */
export function rpcHandler(ctx: EndpointContext, hostRef: () => string, via: 'tcp' | 'unix'): http.RequestListener {
  const { api, state, faults, counters } = ctx;
  const reply = (res: http.ServerResponse, protocol: SimProtocol, body: string): void => {
    counters.replies += 1;
    const out = faults.malformedEvery > 0 && counters.replies % faults.malformedEvery === 0 ? body.slice(0, Math.floor(body.length / 2)) : body;
    const length = Buffer.byteLength(out);
    counters.bytesOut += length;
    // api_server.ml:136-146 (XML-RPC) and :170-180 (JSON-RPC).
    res.writeHead(200, { 'content-type': protocol.contentType, 'content-length': length, 'access-control-allow-origin': '*', 'access-control-allow-headers': 'X-Requested-With' });
    res.end(out);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const read = await readBody(req, MAX_RPC_REQUEST_BYTES);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const protocol = protocolFor(path);
    if ('body' in read) counters.bytesIn += Buffer.byteLength(read.body);
    if (protocol === jsonRpc && faults.jsonRpcNotFound) {
      counters.bytesOut += sendNotFound(res);
      return;
    }
    if (faults.http500 === true || (typeof faults.http500 === 'number' && faults.http500 > 0)) {
      if (typeof faults.http500 === 'number') faults.http500 -= 1;
      counters.totalCalls += 1;
      counters.bytesOut += sendInternalError(res);
      return;
    }
    if (req.method !== 'POST') {
      counters.bytesOut += sendInternalError(res);
      return;
    }
    if (!('body' in read)) {
      counters.bytesOut += sendInternalError(res, read.refused === 'no-length' ? NO_CONTENT_LENGTH : BODY_TOO_LARGE);
      return;
    }
    let call: SimCall;
    try {
      call = protocol.decode(read.body);
    } catch (err) {
      if (!(err instanceof WireParseError)) throw err;
      counters.bytesOut += sendInternalError(res, err.message);
      return;
    }
    counters.totalCalls += 1;
    counters.calls[call.method] = (counters.calls[call.method] ?? 0) + 1;
    const abort = new AbortController();
    res.on('close', () => { abort.abort(); });
    if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.hostStillBooting) {
      // Raised before dispatch (api_server.ml:22-24): JSON-RPC answers the V2 array form with id 0.
      reply(res, protocol, protocol.failure('HOST_STILL_BOOTING', [], call, 'outside'));
      return;
    }
    const self = hostRef();
    const isMember = state.masterRef() !== self;
    const forwarded = isMember && via === 'unix' && !MEMBER_LOCAL.has(call.method);
    const context: CallContext = { via, hostRef: self };
    try {
      if (isMember && via === 'tcp' && call.method !== 'system.listMethods') throw new SimFailure('HOST_IS_SLAVE', [state.masterAddress()]);
      const result = await api.handle(call, abort.signal, context);
      if (abort.signal.aborted) return;
      reply(res, protocol, protocol.success(result.value, call, { forwarded, bare: result.bare }));
    } catch (err) {
      if (err instanceof SimAborted || abort.signal.aborted) return;
      const origin = forwarded ? 'forwarded' : 'dispatched';
      if (err instanceof SimFailure) reply(res, protocol, protocol.failure(err.code, err.params, call, origin));
      else reply(res, protocol, protocol.failure('INTERNAL_ERROR', [err instanceof Error ? err.message : 'unknown'], call, origin));
    }
  };

  return (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendInternalError(res);
      else res.destroy();
    });
  };
}
