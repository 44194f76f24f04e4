import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import type { XapiClient } from '../../../src/xapi/client.js';
import { lookupNetworksByBridge } from '../../../src/xapi/lookups.js';
import { setInterest, simClient, until } from './support.js';

const bridges = (add: string[], remove: string[] = []) => ({ addVifs: [], removeVifs: [], addVms: [], removeVms: [], addBridges: add, removeBridges: remove });

describe.each(['jsonrpc', 'xmlrpc'] as const)('networks followed by bridge name (%s)', (protocol) => {
  let sim: Simulator;
  const clients: XapiClient[] = [];

  beforeAll(async () => {
    // Three hosts; xenbr0 and xenbr1 carry VIFs of VMs on every host.
    sim = await startSimulator({ generate: { vms: 6, vifsPerVm: 2, hosts: 3 } });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await sim.close();
  });

  /** An event.from timeout of 1 s: a poll with nothing to report still answers (with valid_ref_counts) every second. */
  function client(): XapiClient {
    const c = simClient(sim, { protocol, eventTimeoutSec: 1 });
    clients.push(c);
    return c;
  }

  const calls = (method: string): number => sim.counters.calls[method] ?? 0;

  it('looks networks up by bridge name, at cold start and as interest grows, without fetching their records', async () => {
    sim.resetCounters();
    const c = client();
    setInterest(c.watcher, { vifs: [], vms: [], bridges: ['xenbr0'] });
    c.start();
    await until(() => c.watcher.phase === 'live' && c.watcher.cache.networkByBridge('xenbr0').state === 'known');
    c.watcher.changeInterest(bridges(['xenbr1', 'no-such-bridge']));
    await until(() => c.watcher.cache.networkByBridge('xenbr1').state === 'known' && c.watcher.cache.networkByBridge('no-such-bridge').state === 'absent');

    const xenbr1 = sim.state.resolve('network', 'xenbr1');
    const found = c.watcher.cache.networkByBridge('xenbr1');
    expect(found.state === 'known' && found.record).toEqual({ ref: xenbr1.ref, uuid: xenbr1.uuid, bridge: 'xenbr1', otherConfig: {} });
    expect(calls('network.get_all_where')).toBeGreaterThanOrEqual(2);
    expect(calls('network.get_bridge')).toBeGreaterThanOrEqual(2);
    for (const method of ['network.get_all_records', 'network.get_all_records_where', 'network.get_record']) expect(calls(method)).toBe(0);
  });

  it('answers the lookup in the same bytes however many VIFs of other hosts are on the network', async () => {
    const { session } = client();
    await lookupNetworksByBridge(session, ['xenbr0']);
    const before = sim.counters.bytesOut;
    const first = await lookupNetworksByBridge(session, ['xenbr0']);
    const bytes = sim.counters.bytesOut - before;

    const remote = sim.state.all('VM').find((vm) => vm.fields.resident_on !== sim.thisHost.ref && vm.fields.resident_on !== 'OpaqueRef:NULL');
    if (remote === undefined) throw new Error('fixture has no VM on another host');
    for (let i = 0; i < 200; i++) sim.state.addVif({ vm: remote.ref, network: 'xenbr0', device: String(2 + (i % 14)) });
    expect((sim.state.record(sim.state.resolve('network', 'xenbr0')).VIFs as string[]).length).toBeGreaterThan(200);

    const mark = sim.counters.bytesOut;
    const second = await lookupNetworksByBridge(session, ['xenbr0']);
    expect(sim.counters.bytesOut - mark).toBe(bytes);
    expect(second).toEqual(first);
  });

  it('subscribes to each followed network, not the class, and an override change arrives through its events', async () => {
    const c = client();
    const call = vi.spyOn(c.session, 'call');
    c.start();
    c.watcher.changeInterest(bridges(['xenbr1']));
    await until(() => c.watcher.phase === 'live' && c.watcher.cache.networkByBridge('xenbr1').state === 'known');
    const ref = sim.state.resolve('network', 'xenbr1').ref;
    await until(() => call.mock.calls.some(([method, params]) => method === 'event.from' && (params[0] as string[]).includes(`network/${ref}`)));
    const subscriptions = call.mock.calls.filter(([method]) => method === 'event.from').map(([, params]) => params[0] as string[]);
    for (const subs of subscriptions) expect(subs).not.toContain('network');
    await new Promise((r) => setTimeout(r, 30));

    const lookups = calls('network.get_all_where');
    sim.state.addToOtherConfig('network', 'xenbr1', 'vswitch-disable-in-band', 'true');
    await until(() => {
      const n = c.watcher.cache.networkByBridge('xenbr1');
      return n.state === 'known' && n.record.otherConfig['vswitch-disable-in-band'] === 'true';
    }, 2000);
    expect(calls('network.get_all_where')).toBe(lookups);
    sim.state.removeFromOtherConfig('network', 'xenbr1', 'vswitch-disable-in-band');
  });

  it('finds a network created after the lookup of its bridge name said absent (valid_ref_counts)', async () => {
    const c = client();
    c.start();
    const name = `late-${protocol}`;
    c.watcher.changeInterest(bridges([name]));
    await until(() => c.watcher.phase === 'live' && c.watcher.cache.networkByBridge(name).state === 'absent');
    // Past the first answer after the sync, which looks absent names up again anyway.
    await new Promise((r) => setTimeout(r, 100));
    expect(c.watcher.cache.networkByBridge(name).state).toBe('absent');

    const created = sim.state.addNetwork({ bridge: name, other_config: { 'nicira-bridge-id': 'late-id' } });
    await until(() => c.watcher.cache.networkByBridge(name).state === 'known', 5000);
    const n = c.watcher.cache.networkByBridge(name);
    expect(n.state === 'known' && n.record).toEqual({ ref: created.ref, uuid: created.uuid, bridge: name, otherConfig: { 'nicira-bridge-id': 'late-id' } });
  });

  it('a deleted network becomes absent through its del event', async () => {
    const name = `gone-${protocol}`;
    sim.state.addNetwork({ bridge: name });
    const c = client();
    c.start();
    c.watcher.changeInterest(bridges([name]));
    await until(() => c.watcher.phase === 'live' && c.watcher.cache.networkByBridge(name).state === 'known');
    await new Promise((r) => setTimeout(r, 50));
    const lookups = calls('network.get_all_where');

    sim.state.removeNetwork(name);
    await until(() => c.watcher.cache.networkByBridge(name).state === 'absent', 2000);
    expect(calls('network.get_all_where')).toBe(lookups);
    expect(c.watcher.cache.networks.liveRefs()).toEqual([]);
  });

  it('re-reads a crowded network instead of following it: VIFs plugged on it elsewhere send nothing', async () => {
    const name = `crowded-${protocol}`;
    const net = sim.state.addNetwork({ bridge: name });
    const elsewhere = sim.state.all('VM').find((vm) => vm.fields.resident_on !== sim.thisHost.ref)!;
    for (let i = 0; i < 3; i++) sim.state.addVif({ vm: elsewhere.ref, network: net.ref, device: String(10 + i) });
    const c = simClient(sim, { protocol, crowdedNetworkVifs: 3, networkRefreshMs: 100 });
    clients.push(c);
    const call = vi.spyOn(c.session, 'call');
    const followed = (): boolean => call.mock.calls.some(([method, params]) => method === 'event.from' && (params[0] as string[]).includes(`network/${net.ref}`));
    c.start();
    c.watcher.changeInterest(bridges([name]));
    await until(() => c.watcher.phase === 'live' && c.watcher.cache.networkByBridge(name).state === 'known' && followed());

    // The fourth VIF makes the snapshot list more than 3: from the next poll on, the network is left out.
    sim.state.addVif({ vm: elsewhere.ref, network: net.ref, device: '13' });
    await until(() => {
      const last = call.mock.calls.filter(([method]) => method === 'event.from').at(-1);
      return last !== undefined && !(last[1][0] as string[]).includes(`network/${net.ref}`);
    });
    const polls = call.mock.calls.length;
    for (let i = 0; i < 20; i++) sim.state.addVif({ vm: elsewhere.ref, network: net.ref, device: String(20 + i) });
    await new Promise((r) => setTimeout(r, 50));
    // Nothing subscribed changed, so the long-poll (30 s timeout) did not answer: no snapshot of 20+ refs.
    expect(call.mock.calls.slice(polls).filter(([method]) => method === 'event.from')).toHaveLength(0);

    sim.state.addToOtherConfig('network', name, 'vswitch-controller-fail-mode', 'secure');
    await until(() => {
      const n = c.watcher.cache.networkByBridge(name);
      return n.state === 'known' && n.record.otherConfig['vswitch-controller-fail-mode'] === 'secure';
    }, 2000);
    for (const vif of sim.state.all('VIF').filter((v) => v.fields.network === net.ref)) sim.state.removeVif(vif.ref);
    sim.state.removeNetwork(name);
    await until(() => c.watcher.cache.networkByBridge(name).state === 'absent', 2000);
  });

  it('treats a bridge name a filter literal cannot carry as absent without asking XAPI', async () => {
    const c = client();
    c.start();
    await until(() => c.watcher.phase === 'live');
    await new Promise((r) => setTimeout(r, 50));
    const lookups = calls('network.get_all_where');
    const name = 'x" or true or "';
    c.watcher.changeInterest(bridges([name]));
    expect(c.watcher.cache.networkByBridge(name).state).toBe('absent');
    expect(c.watcher.lookupsOutstanding).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls('network.get_all_where')).toBe(lookups);
  });
});
