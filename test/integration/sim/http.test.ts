import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import { jsonResult, jsonRpc, post } from './rpc-helper.js';

/*
 * The simulator's HTTP side as xapi's: xen-api ocaml/libs/http-lib/http_svr.ml (Content-Length,
 * error pages), ocaml/xapi/api_server.ml (handlers, headers), mirage/ocaml-rpc xmlrpc.ml (bytes).
 */
let sim: Simulator;
let vifRef: string;
let vmRef: string;
const target = (): { url: string } => ({ url: sim.url! });

beforeAll(async () => {
  sim = await startSimulator({ generate: { vms: 2, vifsPerVm: 1 }, eventDelayMs: 1 });
  const vif = sim.state.all('VIF')[0]!;
  vifRef = vif.ref;
  vmRef = vif.fields.VM as string;
  sim.state.addToOtherConfig('VIF', vif.ref, 'a&b', '1');
  sim.state.addToOtherConfig('VIF', vif.ref, 'a<b', 'x<y');
});
afterAll(async () => {
  await sim.close();
});

/** One raw HTTP exchange, so that headers (or their absence) are exactly what the test writes. */
function raw(request: string): Promise<string> {
  const u = new URL(sim.url!);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), u.hostname, () => socket.end(request));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => { resolve(Buffer.concat(chunks).toString('utf8')); });
    socket.on('error', reject);
  });
}

const xmlCall = (method: string, params: string[]): string =>
  `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params.map((p) => `<param><value>${p}</value></param>`).join('')}</params></methodCall>`;

async function login(): Promise<string> {
  return (await jsonResult(target(), 'session.login_with_password', ['', ''])) as string;
}

describe('HTTP as http_svr.ml', () => {
  it('a request without Content-Length is refused with HTTP 500 and xapi’s page (read_body, http_svr.ml:700-705)', async () => {
    const body = xmlCall('session.login_with_password', ['', '']);
    const reply = await raw(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
    expect(reply).toMatch(/^HTTP\/1\.1 500 Internal Error\r\n/);
    expect(reply.toLowerCase()).toContain('connection: close');
    expect(reply).toContain('We require a content-length: HTTP header');
    const ok = await raw(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    expect(ok).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('/jsonrpc can answer HTTP 404 as a host without JSON-RPC, while XML-RPC still works', async () => {
    await sim.faults.set({ jsonRpcNotFound: true });
    try {
      expect((await jsonRpc(target(), 'session.login_with_password', ['', ''])).status).toBe(404);
      expect((await post(target(), '/', xmlCall('session.login_with_password', ['', '']))).body).toContain('<name>Status</name><value>Success</value>');
    } finally {
      await sim.faults.set({ jsonRpcNotFound: false });
    }
    expect((await jsonRpc(target(), 'session.login_with_password', ['', ''])).status).toBe(200);
  });
});

describe('what xapi really sends', () => {
  it('XML-RPC: a map key with & or < goes on the wire raw inside <name>, its value escaped', async () => {
    const s = await login();
    const reply = await post(target(), '/', xmlCall('VIF.get_record', [s, vifRef]));
    expect(reply.body).toContain('<member><name>a&b</name><value>1</value></member>');
    expect(reply.body).toContain('<member><name>a<b</name><value>x&lt;y</value></member>');
  });

  it('JSON-RPC carries the same keys without any escaping problem', async () => {
    const s = await login();
    const vif = (await jsonResult(target(), 'VIF.get_record', [s, vifRef])) as { other_config: Record<string, string> };
    expect(vif.other_config).toMatchObject({ 'a&b': '1', 'a<b': 'x<y' });
  });

  it('a VM record holds <double>, <dateTime.iso8601> and about 100 fields, scheduled_to_be_resident_on among them', async () => {
    const s = await login();
    const reply = await post(target(), '/', xmlCall('VM.get_record', [s, vmRef]));
    expect(reply.body).toContain('<member><name>HVM_shadow_multiplier</name><value><double>1</double></value></member>');
    expect(reply.body).toContain('<member><name>snapshot_time</name><value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></member>');
    expect(reply.body).toContain('<member><name>scheduled_to_be_resident_on</name><value>OpaqueRef:NULL</value></member>');
    const vm = (await jsonResult(target(), 'VM.get_record', [s, vmRef])) as Record<string, unknown>;
    expect(Object.keys(vm).length).toBeGreaterThanOrEqual(90);
    expect(vm.HVM_shadow_multiplier).toBe(1);
    expect(reply.headers['content-type']).toBe('text/xml');
    expect(reply.headers['access-control-allow-origin']).toBe('*');
  });

  it('event.from valid_ref_counts are <i4> on the master', async () => {
    const s = await login();
    const reply = await post(target(), '/', `<?xml version="1.0"?><methodCall><methodName>event.from</methodName><params><param><value>${s}</value></param><param><value><array><data><value>vm</value></data></array></value></param><param><value></value></param><param><value><double>1</double></value></param></params></methodCall>`);
    expect(reply.body).toMatch(/<member><name>vm<\/name><value><i4>3<\/i4><\/value><\/member>/);
  });

  it('an unknown column in a filter is INTERNAL_ERROR ["missing field"; col; ""]; a bad filter INVALID_VALUE', async () => {
    const s = await login();
    const missing = await jsonRpc(target(), 'VM.get_all_records_where', [s, 'field "name_label"="vm0"']);
    expect(missing.body.error).toStrictEqual(['INTERNAL_ERROR', 'missing field', 'name_label', '']);
    const bad = await jsonRpc(target(), 'VM.get_all_records_where', [s, 'field "uuid"=']);
    expect(bad.body.error).toStrictEqual(['INVALID_VALUE', 'field "uuid"=', 'Stdlib.Parsing.Parse_error']);
    expect(Object.keys((await jsonResult(target(), 'VM.get_all_records_where', [s, 'field "name__label"="vm0"'])) as object)).toHaveLength(1);
  });

  it('JSON-RPC V2 errors inside dispatch are objects with code 1', async () => {
    const reply = await jsonRpc(target(), 'VM.get_all', ['OpaqueRef:nope'], { version: '2.0', id: 'x' });
    expect(reply.body).toStrictEqual({ jsonrpc: '2.0', error: { code: 1, message: 'SESSION_INVALID', data: ['OpaqueRef:nope'] }, id: 'x' });
  });
});
