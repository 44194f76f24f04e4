import { afterEach, describe, expect, it, vi } from 'vitest';
import { SimApi, SimFailure, type CallContext } from '../../../src/sim/api.js';
import { tokenOf } from '../../../src/sim/events.js';
import { createIdSource } from '../../../src/sim/ids.js';
import { SimState } from '../../../src/sim/state.js';
import type { SimStruct, SimValue } from '../../../src/sim/wire/values.js';

/*
 * event.from as xen-api ocaml/xapi/xapi_event.ml:549-777 computes it, and the deleted-row queue of
 * ocaml/database/db_cache_types.ml:239-286, driven through the simulator's API object directly.
 */

interface World {
  state: SimState;
  api: SimApi;
  host: string;
  session: string;
  call(method: string, params: SimValue[], signal?: AbortSignal, ctx?: CallContext): Promise<SimValue>;
  knobs: { injectUnknown: boolean };
}

const worlds: World[] = [];
afterEach(() => {
  for (const w of worlds.splice(0)) w.api.close();
  vi.useRealTimers();
});

async function world(options: { credentials?: { user: string; password: string }; loginFailureDelayMs?: number } = {}): Promise<World> {
  const ids = createIdSource(9);
  const state = new SimState(ids);
  const host = state.addHost({ hostname: 'h' }).ref;
  state.addPool({ master: host });
  state.addNetwork({ bridge: 'xenbr0' });
  const knobs = { injectUnknown: false };
  const api = new SimApi({ state, ids, eventDelayMs: 0, eventFromHang: () => false, injectUnknown: () => knobs.injectUnknown, loginFailureDelayMs: options.loginFailureDelayMs ?? 0, credentials: options.credentials });
  const unix: CallContext = { via: 'unix', hostRef: host };
  const call = async (method: string, params: SimValue[], signal = new AbortController().signal, ctx = unix): Promise<SimValue> => (await api.handle({ method, params }, signal, ctx)).value;
  const session = (await call('session.login_with_password', ['', ''])) as string;
  const w = { state, api, host, session, call, knobs };
  worlds.push(w);
  return w;
}

const batch = (v: SimValue): { events: SimStruct[]; token: string; counts: SimStruct } => {
  const s = v as SimStruct;
  return { events: s.events as SimStruct[], token: s.token as string, counts: s.valid_ref_counts as SimStruct };
};

describe('event.from token', () => {
  it('comes back unchanged at a timeout, even when other classes changed meanwhile', async () => {
    const w = await world();
    const token = tokenOf(w.state.generation);
    w.state.addNetwork({ bridge: 'xenbr9' });
    const b = batch(await w.call('event.from', [w.session, ['vm'], token, 0.05]));
    expect(b.events).toStrictEqual([]);
    expect(b.token).toBe(token);
  });

  it('advances only to the last MATCHING change, not to the database generation', async () => {
    const w = await world();
    const token = tokenOf(w.state.generation);
    const vm = w.state.addVm({ name_label: 'a' });
    const vmGeneration = w.state.byRef('VM', vm.ref)!.modified;
    w.state.addNetwork({ bridge: 'xenbr7' });
    w.state.addNetwork({ bridge: 'xenbr8' });
    const b = batch(await w.call('event.from', [w.session, ['vm'], token, 1]));
    expect(b.events.map((e) => [e.class, e.operation, e.ref])).toStrictEqual([['vm', 'add', vm.ref]]);
    expect(b.token).toBe(tokenOf(vmGeneration));
    expect(w.state.generation).toBeGreaterThan(vmGeneration);
  });

  it('snapshots carry the public scheduled_to_be_resident_on; valid_ref_counts are Int32 for every table', async () => {
    const w = await world();
    const vm = w.state.addVm({ name_label: 'a' });
    const token = tokenOf(w.state.generation);
    w.state.beginVmPlacement(vm.ref, w.host);
    const b = batch(await w.call('event.from', [w.session, ['vm'], token, 1]));
    expect(b.events[0]?.snapshot).toMatchObject({ scheduled_to_be_resident_on: w.host });
    expect(Object.keys(b.counts).sort()).toStrictEqual(['host', 'network', 'pool', 'session', 'vif', 'vm']);
  });

  it('a token ahead of the database (xapi restarted on an older one) matches nothing: it returns unchanged at every timeout', async () => {
    const w = await world();
    for (let i = 0; i < 5; i++) w.state.addNetwork({ bridge: `b${i}` });
    const ahead = tokenOf(w.state.generation);
    w.state.rewind(4);
    const s2 = (await w.call('session.login_with_password', ['', ''])) as string;
    w.state.addNetwork({ bridge: 'after-restart' });
    const b = batch(await w.call('event.from', [s2, ['network'], ahead, 0.05]));
    expect(b.events).toStrictEqual([]);
    expect(b.token).toBe(ahead);
    expect(b.counts.network).toMatchObject({ value: 7 });
  });
});

describe('deleted rows: a bounded queue per table', () => {
  it('reports only the deletions still queued; an older del is never reported', async () => {
    const w = await world();
    const refs: string[] = [];
    for (let i = 0; i < 600; i++) refs.push(w.state.addNetwork({ bridge: `n${i}` }).ref);
    const token = tokenOf(w.state.generation);
    for (const r of refs) w.state.removeNetwork(r);
    const dels = batch(await w.call('event.from', [w.session, ['network'], token, 1])).events.filter((e) => e.operation === 'del');
    // 511 kept, the 512th cuts back to 257, then 88 more: 345 (db_cache_types.ml:239-258).
    expect(dels).toHaveLength(345);
    expect(dels.map((e) => e.ref)).not.toContain(refs[0]);
    expect(dels.map((e) => e.ref)).toContain(refs[599]);
  });

  it('a row created and deleted after the token neither shows nor moves the token', async () => {
    const w = await world();
    const token = tokenOf(w.state.generation);
    w.state.removeNetwork(w.state.addNetwork({ bridge: 'short' }).ref);
    const b = batch(await w.call('event.from', [w.session, ['network'], token, 0.05]));
    expect(b.events).toStrictEqual([]);
    expect(b.token).toBe(token);
  });
});

describe('abandoned waiters', () => {
  it('a client that goes away leaves its event.from blocked until a matching change, and it is counted', async () => {
    const w = await world();
    const abort = new AbortController();
    const pending = w.call('event.from', [w.session, ['vm'], tokenOf(w.state.generation), 30], abort.signal);
    abort.abort();
    await vi.waitFor(() => { expect(w.api.abandonedWaiters).toBe(1); });
    w.state.addNetwork({ bridge: 'not-a-vm' });
    await new Promise((r) => setTimeout(r, 20));
    expect(w.api.abandonedWaiters).toBe(1);
    w.state.addVm({ name_label: 'wakes it' });
    await pending;
    expect(w.api.abandonedWaiters).toBe(0);
    expect(w.api.abandonedWaitersTotal).toBe(1);
  });
});

describe('event.inject', () => {
  it('needs the exact table name: "VM" works, "vm" is HANDLE_INVALID (xapi_event.ml:779-805)', async () => {
    const w = await world();
    const vm = w.state.addVm({ name_label: 'a' });
    const before = w.state.generation;
    expect(await w.call('event.inject', [w.session, 'VM', vm.ref])).toBe(tokenOf(before));
    await expect(w.call('event.inject', [w.session, 'vm', vm.ref])).rejects.toMatchObject({ code: 'HANDLE_INVALID', params: ['vm', vm.ref] });
  });
  it('answers MESSAGE_METHOD_UNKNOWN when the knob makes the host an older one', async () => {
    const w = await world();
    w.knobs.injectUnknown = true;
    await expect(w.call('event.inject', [w.session, 'pool', w.state.all('pool')[0]!.ref])).rejects.toMatchObject({ code: 'MESSAGE_METHOD_UNKNOWN', params: ['event.inject'] });
  });
});

describe('sessions', () => {
  it('the unix socket accepts any credentials; TCP needs the password and fails only after the delay', async () => {
    vi.useFakeTimers();
    const w = await world({ credentials: { user: 'root', password: 'pw' }, loginFailureDelayMs: 5000 });
    const tcp: CallContext = { via: 'tcp', hostRef: w.host };
    expect(await w.call('session.login_with_password', ['root', 'pw'], undefined, tcp)).toMatch(/^OpaqueRef:/);
    let settled: unknown;
    const bad = w.call('session.login_with_password', ['root', 'wrong'], undefined, tcp).catch((err: unknown) => (settled = err));
    await vi.advanceTimersByTimeAsync(4999);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await bad;
    expect(settled).toBeInstanceOf(SimFailure);
    expect(settled).toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED', params: ['root', 'Authentication failure'] });
  });
  it('session.get_this_host names the host that processed the login', async () => {
    const w = await world();
    const other = w.state.addHost({ hostname: 'member' }).ref;
    const s = (await w.call('session.login_with_password', ['', ''], undefined, { via: 'unix', hostRef: other })) as string;
    expect(await w.call('session.get_this_host', [s, s])).toBe(other);
    expect(await w.call('session.get_this_host', [w.session, w.session])).toBe(w.host);
  });
});
