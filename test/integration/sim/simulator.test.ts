import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonRpcCodec } from '../../../src/xapi/codec/jsonrpc.js';
import type { XapiStruct, XapiValue, XapiWireCodec } from '../../../src/xapi/codec/types.js';
import { xmlRpcCodec } from '../../../src/xapi/codec/xmlrpc.js';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import { call, failure, post } from './rpc-helper.js';

const fixture = {
  pool: { other_config: { 'vswitch-controller-fail-mode': 'secure' } },
  hosts: [{ hostname: 'h0', uuid: '11111111-1111-4111-8111-111111111111' }, { hostname: 'h1' }],
  networks: [{ bridge: 'xenbr0', other_config: { 'nicira-bridge-id': 'br-custom' } }, { bridge: 'xenbr1' }],
  vms: [
    { uuid: '22222222-2222-4222-8222-222222222222', resident_on: 0, domid: 5, vifs: [{ device: '0', network: 'xenbr0', other_config: { 'nicira-iface-id': 'custom' } }, { device: '1', network: 'xenbr1' }] },
    { resident_on: 1, domid: 3, vifs: [{ device: '0', network: 'xenbr0' }] },
  ],
};

let sim: Simulator;
let dir: string;
const target = (): { url: string } => ({ url: sim.url! });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xapi-sim-'));
  sim = await startSimulator({ fixture, listen: { host: '127.0.0.1', port: 0 }, unix: join(dir, 'xapi'), controlListen: { host: '127.0.0.1', port: 0 }, eventDelayMs: 2 });
});
afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

const codecs: [string, XapiWireCodec][] = [
  ['xmlrpc', xmlRpcCodec],
  ['jsonrpc', jsonRpcCodec],
];

describe.each(codecs)('%s', (_name, codec) => {
  const rpc = (method: string, params: XapiValue[]): Promise<XapiValue> => call(target(), codec, method, params);
  const login = async (): Promise<string> => (await rpc('session.login_with_password', ['', ''])) as string;

  it('logs in, names this host, reads records with realistic fields', async () => {
    const s = await login();
    expect(s).toMatch(/^OpaqueRef:/);
    expect(await rpc('session.get_this_host', [s, s])).toBe(sim.thisHost.ref);
    expect(await rpc('host.get_uuid', [s, sim.thisHost.ref])).toBe('11111111-1111-4111-8111-111111111111');
    const vifs = (await rpc('VIF.get_all_records', [s])) as Record<string, XapiStruct>;
    expect(Object.keys(vifs)).toHaveLength(3);
    const vif = Object.values(vifs).find((v) => (v.other_config as XapiStruct)['nicira-iface-id'] === 'custom')!;
    expect(vif.device).toBe('0');
    expect(vif.currently_attached).toBe(true);
    expect(vif.MTU).toBe(codec === jsonRpcCodec ? 1500 : '1500');
    const vm = (await rpc('VM.get_record', [s, vif.VM!])) as XapiStruct;
    expect(vm).toMatchObject({ power_state: 'Running', resident_on: sim.thisHost.ref, is_control_domain: false });
    expect(vm.domid).toBe(codec === jsonRpcCodec ? 5 : '5');
    expect(await rpc('network.get_bridge', [s, vif.network!])).toBe('xenbr0');
    const host = (await rpc('host.get_record', [s, sim.thisHost.ref])) as XapiStruct;
    expect((host.software_version as XapiStruct).product_brand).toBe('XCP-ng');
  });

  it('answers XAPI error codes exactly', async () => {
    const s = await login();
    expect(await failure(rpc('VM.get_by_uuid', [s, 'nope']))).toMatchObject({ code: 'UUID_INVALID', params: ['VM', 'nope'] });
    // A uuid of another class is UUID_INVALID too.
    expect(await failure(rpc('VIF.get_by_uuid', [s, '22222222-2222-4222-8222-222222222222']))).toMatchObject({ code: 'UUID_INVALID', params: ['VIF', '22222222-2222-4222-8222-222222222222'] });
    expect(await failure(rpc('VM.get_record', [s, 'OpaqueRef:bad']))).toMatchObject({ code: 'HANDLE_INVALID', params: ['VM', 'OpaqueRef:bad'] });
    expect(await failure(rpc('VM.get_all', ['OpaqueRef:nosession']))).toMatchObject({ code: 'SESSION_INVALID', params: ['OpaqueRef:nosession'] });
    expect(await failure(rpc('VM.frobnicate', [s]))).toMatchObject({ code: 'MESSAGE_METHOD_UNKNOWN', params: ['VM.frobnicate'] });
    expect(await failure(rpc('VM.get_record', [s]))).toMatchObject({ code: 'MESSAGE_PARAMETER_COUNT_MISMATCH', params: ['VM.get_record', '2', '1'] });
    expect(await failure(rpc('event.from', [s, ['vm'], 'garbage', 1]))).toMatchObject({ code: 'EVENT_FROM_TOKEN_PARSE_FAILURE', params: ['garbage'] });
    expect(await failure(rpc('VM.get_all_records_where', [s, 'field "a" =']))).toMatchObject({ code: 'INVALID_VALUE' });
  });

  it('get_all_records_where parses the real expression language', async () => {
    const s = await login();
    const where = async (e: string): Promise<number> => Object.keys((await rpc('VM.get_all_records_where', [s, e])) as object).length;
    expect(await where('true')).toBe(4); // 2 guests + 2 control domains
    expect(await where('false')).toBe(0);
    expect(await where('field "is_control_domain" = "true"')).toBe(2);
    expect(await where('field "is_control_domain"="false" and field "resident_on"="' + sim.thisHost.ref + '"')).toBe(1);
    expect(await where('(field "domid"="5") or (field "domid"="3")')).toBe(2);
    expect(await where('not (field "power_state" = "Running")')).toBe(0);
    expect(await where('field "name__label" = "vm0"')).toBe(1);
    const nets = (await rpc('network.get_all_records_where', [s, 'field "bridge"="xenbr1"'])) as Record<string, XapiStruct>;
    expect(Object.values(nets).map((n) => n.bridge)).toStrictEqual(['xenbr1']);
  });

  it('get_all_where answers the refs the expression selects, for every class; field getters answer as get_record', async () => {
    const s = await login();
    const xenbr0 = sim.state.resolve('network', 'xenbr0');
    const xenbr1 = sim.state.resolve('network', 'xenbr1');
    const refs = async (cls: string, e: string): Promise<string[]> => ((await rpc(`${cls}.get_all_where`, [s, e])) as string[]).slice().sort();
    expect(await refs('network', 'field "bridge"="xenbr1"')).toStrictEqual([xenbr1.ref]);
    expect(await refs('network', 'field "bridge"="xenbr0" or field "bridge"="xenbr1" or field "bridge"="nope"')).toStrictEqual([xenbr0.ref, xenbr1.ref].sort());
    expect(await refs('network', 'field "bridge"="nope"')).toStrictEqual([]);
    expect(await refs('VM', 'field "is_control_domain"="true"')).toHaveLength(2);
    expect(await refs('VIF', `field "uuid"="${sim.localVifs()[0]!.vifUuid}"`)).toStrictEqual([sim.state.findByUuid('VIF', sim.localVifs()[0]!.vifUuid)!.ref]);
    expect(await refs('host', 'true')).toHaveLength(2);
    expect(await refs('pool', 'true')).toHaveLength(1);
    expect(await failure(rpc('network.get_all_where', [s, 'field "bridge"="a" or']))).toMatchObject({ code: 'INVALID_VALUE' });
    expect(await failure(rpc('network.get_all_where', [s]))).toMatchObject({ code: 'MESSAGE_PARAMETER_COUNT_MISMATCH', params: ['network.get_all_where', '2', '1'] });

    const record = (await rpc('network.get_record', [s, xenbr0.ref])) as XapiStruct;
    expect(await rpc('network.get_uuid', [s, xenbr0.ref])).toStrictEqual(record.uuid);
    expect(await rpc('network.get_bridge', [s, xenbr0.ref])).toStrictEqual('xenbr0');
    expect(await rpc('network.get_other_config', [s, xenbr0.ref])).toStrictEqual(record.other_config);
    expect(await rpc('network.get_other_config', [s, xenbr0.ref])).toStrictEqual({ 'nicira-bridge-id': 'br-custom' });
    expect(await rpc('network.get_VIFs', [s, xenbr0.ref])).toStrictEqual(record.VIFs);
    for (const getter of ['get_uuid', 'get_bridge', 'get_other_config']) {
      expect(await failure(rpc(`network.${getter}`, [s, 'OpaqueRef:gone']))).toMatchObject({ code: 'HANDLE_INVALID', params: ['network', 'OpaqueRef:gone'] });
    }
  });

  it('other_config: add (MAP_DUPLICATE_KEY), remove, set, get', async () => {
    const s = await login();
    const net = (await rpc('network.get_by_uuid', [s, sim.state.resolve('network', 'xenbr1').uuid])) as string;
    const key = `k-${codec.protocol}`;
    expect(await rpc('network.add_to_other_config', [s, net, key, 'v'])).toBe('');
    const dup = await failure(rpc('network.add_to_other_config', [s, net, key, 'w']));
    expect(dup).toMatchObject({ code: 'MAP_DUPLICATE_KEY', params: ['network', 'other_config', sim.state.resolve('network', net).uuid, key] });
    expect(await rpc('network.get_other_config', [s, net])).toMatchObject({ [key]: 'v' });
    await rpc('network.remove_from_other_config', [s, net, key]);
    expect(await rpc('network.get_other_config', [s, net])).not.toHaveProperty(key);
    await rpc('network.set_other_config', [s, net, { a: 'b' }]);
    expect(await rpc('network.get_other_config', [s, net])).toStrictEqual({ a: 'b' });
  });

  it('event.from: initial dump, add/mod/del, coalescing, per-object subscription, inject token', async () => {
    const s = await login();
    type Batch = { events: XapiStruct[]; token: string; valid_ref_counts: XapiStruct };
    const from = async (classes: string[], token: string, timeout = 5): Promise<Batch> => (await rpc('event.from', [s, classes, token, timeout])) as unknown as Batch;
    const dump = await from(['VIF'], '');
    expect(dump.events).toHaveLength(sim.state.count('VIF'));
    expect(dump.events.every((e) => e.operation === 'add' && e.class === 'vif' && e.timestamp === '0.0')).toBe(true);
    expect(dump.token).toMatch(/^\d{20},\d{20}$/);
    expect(Number(dump.valid_ref_counts.vif)).toBe(sim.state.count('VIF'));

    // created then modified within one window → one add; created then deleted → nothing.
    const vm = sim.state.addVm({ resident_on: sim.thisHost.ref, domid: 40 });
    const vif = sim.state.addVif({ vm: vm.ref, network: 'xenbr0', device: '0' });
    sim.state.addToOtherConfig('VIF', vif.ref, 'x', '1');
    const gone = sim.state.addVif({ vm: vm.ref, network: 'xenbr1', device: '1' });
    sim.state.removeVif(gone.ref);
    const b1 = await from(['vif'], dump.token);
    expect(b1.events.map((e) => [e.operation, e.ref])).toStrictEqual([['add', vif.ref]]);
    expect((b1.events[0]!.snapshot as XapiStruct).other_config).toStrictEqual({ x: '1' });

    // two modifications → one mod with the latest snapshot; deletion → del without snapshot.
    sim.state.addToOtherConfig('VIF', vif.ref, 'y', '2');
    sim.state.removeFromOtherConfig('VIF', vif.ref, 'x');
    const b2 = await from(['VIF'], b1.token);
    expect(b2.events.map((e) => e.operation)).toStrictEqual(['mod']);
    expect((b2.events[0]!.snapshot as XapiStruct).other_config).toStrictEqual({ y: '2' });
    sim.state.removeVm(vm.ref);
    const b3 = await from(['vif'], b2.token);
    expect(b3.events).toHaveLength(1);
    expect(b3.events[0]).toMatchObject({ operation: 'del', ref: vif.ref });
    expect(b3.events[0]).not.toHaveProperty('snapshot');

    // per-object subscription: only that ref.
    const net0 = sim.state.resolve('network', 'xenbr0');
    const net1 = sim.state.resolve('network', 'xenbr1');
    const tok = await rpc('event.inject', [s, 'network', net0.ref]);
    expect(tok).toMatch(/^\d{20},\d{20}$/);
    sim.state.addToOtherConfig('network', net1.ref, `z-${codec.protocol}`, '1');
    const b4 = await from([`network/${net0.ref}`], tok as string);
    expect(b4.events.map((e) => e.ref)).toStrictEqual([net0.ref]);
    expect(await failure(rpc('event.inject', [s, 'network', 'OpaqueRef:bad']))).toMatchObject({ code: 'HANDLE_INVALID', params: ['network', 'OpaqueRef:bad'] });
  });

  it('event.from blocks until a change, or returns empty at its timeout', async () => {
    const s = await login();
    const start = (await rpc('event.inject', [s, 'pool', sim.state.all('pool')[0]!.ref])) as string;
    const first = (await rpc('event.from', [s, ['pool'], start, 5])) as { token: string };
    const t0 = Date.now();
    const empty = (await rpc('event.from', [s, ['pool'], first.token, 0.2])) as { events: unknown[]; token: string };
    expect(empty.events).toStrictEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(180);
    const pending = rpc('event.from', [s, ['pool'], empty.token, 10]);
    setTimeout(() => {
      sim.state.setOtherConfig('pool', sim.state.all('pool')[0]!.ref, { a: codec.protocol });
    }, 50);
    const got = (await pending) as { events: XapiStruct[] };
    expect(got.events.map((e) => e.operation)).toStrictEqual(['mod']);
  });
});

describe('wire details', () => {
  it('serves the same API on the unix socket, XML-RPC at /, /RPC2 and any other path', async () => {
    const unix = { socketPath: sim.unixPath! };
    const s = await call(unix, xmlRpcCodec, 'session.login_with_password', ['root', '']);
    for (const path of ['/', '/RPC2', '/xmlrpc']) {
      const reply = await post(unix, path, xmlRpcCodec.encodeCall('VM.get_all', [s], 0));
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toBe('text/xml');
      expect(reply.headers['access-control-allow-origin']).toBe('*');
    }
    // A session from XML-RPC works on JSON-RPC (docs/xapi.md §1.4).
    expect(await call(unix, jsonRpcCodec, 'session.get_this_host', [s, s])).toBe(sim.thisHost.ref);
  });

  it('JSON-RPC: answers V1 in V1 with the request id; malformed requests get HTTP 500 HTML', async () => {
    const v1 = await post(target(), '/jsonrpc', JSON.stringify({ method: 'session.login_with_password', params: ['', ''], id: 'abc' }), 'application/json');
    expect(v1.headers['content-type']).toBe('application/json');
    const body = JSON.parse(v1.body);
    expect(body).toMatchObject({ error: null, id: 'abc' });
    expect(body).not.toHaveProperty('jsonrpc');
    for (const bad of ['{"jsonrpc":"2.0","method":"a.b","params":[]}', 'nope']) {
      const r = await post(target(), '/jsonrpc', bad, 'application/json');
      expect(r.status).toBe(500);
      expect(r.headers['content-type']).toBe('text/html');
    }
    const xml = await post(target(), '/', '<methodCall><methodName>x</methodName></methodCall>');
    expect(xml.status).toBe(500);
    const big = await post(target(), '/', 'x'.repeat(300 * 1024 + 1));
    expect(big.status).toBe(500);
  });

  it('system.listMethods answers without envelope in XML-RPC', async () => {
    const r = await post(target(), '/', xmlRpcCodec.encodeCall('system.listMethods', [], 0));
    expect(r.body).not.toContain('Status');
    expect(xmlRpcCodec.decodeResponse(r.body, 'system.listMethods')).toContain('VM.get_all_records');
  });

  it('requires configured credentials when given', async () => {
    const locked = await startSimulator({ credentials: { user: 'root', password: 'pw' }, loginFailureDelayMs: 20 });
    try {
      expect(await failure(call({ url: locked.url! }, xmlRpcCodec, 'session.login_with_password', ['root', 'bad', '1.0', 'test']))).toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
      expect(await call({ url: locked.url! }, xmlRpcCodec, 'session.login_with_password', ['root', 'pw'])).toMatch(/^OpaqueRef:/);
    } finally {
      await locked.close();
    }
  });
});

describe('fault knobs', () => {
  const rpc = (method: string, params: XapiValue[], codec: XapiWireCodec = xmlRpcCodec): Promise<XapiValue> => call(target(), codec, method, params);

  it('counters count calls and bytes per method', async () => {
    sim.resetCounters();
    const s = (await rpc('session.login_with_password', ['', ''])) as string;
    await rpc('VM.get_all', [s]);
    await rpc('VM.get_all', [s]);
    expect(sim.counters.calls['VM.get_all']).toBe(2);
    expect(sim.counters.totalCalls).toBe(3);
    expect(sim.counters.bytesIn).toBeGreaterThan(0);
    expect(sim.counters.bytesOut).toBeGreaterThan(0);
  });

  it('invalidateSessions → SESSION_INVALID, also for a blocked event.from', async () => {
    const s = (await rpc('session.login_with_password', ['', ''])) as string;
    const tok = (await rpc('event.inject', [s, 'pool', sim.state.all('pool')[0]!.ref])) as string;
    const first = (await rpc('event.from', [s, ['pool'], tok, 5])) as { token: string };
    const blocked = failure(rpc('event.from', [s, ['pool'], first.token, 10]));
    await new Promise((r) => setTimeout(r, 50));
    sim.faults.invalidateSessions();
    expect(await blocked).toMatchObject({ code: 'SESSION_INVALID', params: [s] });
    expect(await failure(rpc('VM.get_all', [s]))).toMatchObject({ code: 'SESSION_INVALID' });
  });

  it('hostStillBooting: every call fails, JSON-RPC in the odd array form', async () => {
    await sim.faults.set({ hostStillBooting: true });
    try {
      expect(await failure(rpc('session.login_with_password', ['', '']))).toMatchObject({ code: 'HOST_STILL_BOOTING' });
      const r = await post(target(), '/jsonrpc', jsonRpcCodec.encodeCall('session.login_with_password', ['', ''], 9), 'application/json');
      expect(JSON.parse(r.body)).toStrictEqual({ jsonrpc: '2.0', error: ['HOST_STILL_BOOTING'], id: 0 });
    } finally {
      await sim.faults.set({ hostStillBooting: false });
    }
  });

  it('http500 for the next K calls, malformedEvery N, latencyMs', async () => {
    await sim.faults.set({ http500: 2 });
    await expect(rpc('session.login_with_password', ['', ''])).rejects.toThrow('HTTP 500');
    await expect(rpc('session.login_with_password', ['', ''])).rejects.toThrow('HTTP 500');
    expect(await rpc('session.login_with_password', ['', ''])).toMatch(/^OpaqueRef:/);
    await sim.faults.set({ malformedEvery: 1 });
    expect(await failure(rpc('session.login_with_password', ['', '']))).toMatchObject({ code: 'XAPI_PROTOCOL' });
    expect(await failure(rpc('session.login_with_password', ['', ''], jsonRpcCodec))).toMatchObject({ code: 'XAPI_PROTOCOL' });
    await sim.faults.set({ malformedEvery: 0, latencyMs: 150 });
    const t0 = Date.now();
    await rpc('session.login_with_password', ['', '']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    await sim.faults.set({ latencyMs: 0 });
  });

  it('eventFromHang holds event.from past its timeout until cleared', async () => {
    const s = (await rpc('session.login_with_password', ['', ''])) as string;
    await sim.faults.set({ eventFromHang: true });
    let done = false;
    const pending = rpc('event.from', [s, ['pool'], '', 0.05]).then((v) => {
      done = true;
      return v;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(done).toBe(false);
    await sim.faults.set({ eventFromHang: false });
    expect(((await pending) as { events: unknown[] }).events.length).toBeGreaterThan(0);
  });

  it('down refuses connections on TCP and unix, then comes back on the same address', async () => {
    const s = (await rpc('session.login_with_password', ['', ''])) as string;
    const blocked = rpc('event.from', [s, ['pool'], '99999999999999999999,00000000000000000000', 10]).then(
      () => 'answered',
      () => 'dropped',
    );
    await new Promise((r) => setTimeout(r, 30));
    await sim.faults.set({ down: true });
    expect(await blocked).toBe('dropped');
    await expect(rpc('VM.get_all', [s])).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(call({ socketPath: sim.unixPath! }, xmlRpcCodec, 'VM.get_all', [s])).rejects.toBeDefined();
    await sim.faults.set({ down: false });
    expect(Array.isArray(await rpc('VM.get_all', [s]))).toBe(true);
    expect(Array.isArray(await call({ socketPath: sim.unixPath! }, xmlRpcCodec, 'VM.get_all', [s]))).toBe(true);
  });

  it('control endpoint: faults, counters, other_config, local VIFs', async () => {
    const control = sim.controlUrl!;
    const r = await fetch(`${control}/faults`, { method: 'POST', body: JSON.stringify({ latencyMs: 1 }) });
    expect(await r.json()).toMatchObject({ latencyMs: 1, down: false });
    await fetch(`${control}/faults`, { method: 'POST', body: JSON.stringify({ latencyMs: 0 }) });
    expect(await (await fetch(`${control}/counters`)).json()).toHaveProperty('totalCalls');
    const vmUuid = '22222222-2222-4222-8222-222222222222';
    const set = await fetch(`${control}/state/other_config`, { method: 'POST', body: JSON.stringify({ class: 'VM', id: vmUuid, op: 'add', key: 'nicira-vm-id', value: 'vm-x' }) });
    expect(set.status).toBe(200);
    expect(sim.state.resolve('VM', vmUuid).fields.other_config).toMatchObject({ 'nicira-vm-id': 'vm-x' });
    const bad = await fetch(`${control}/state/other_config`, { method: 'POST', body: JSON.stringify({ class: 'VM', id: vmUuid, op: 'add', key: 'a\u0007b', value: 'x' }) });
    expect(bad.status).toBe(400);
    const local = (await (await fetch(`${control}/state/local-vifs`)).json()) as { vmUuid: string; domid: number; device: string; bridge: string }[];
    expect(local.map((v) => [v.vmUuid, v.domid, v.device, v.bridge]).sort()).toStrictEqual([
      [vmUuid, 5, '0', 'xenbr0'],
      [vmUuid, 5, '1', 'xenbr1'],
    ]);
  });
});
