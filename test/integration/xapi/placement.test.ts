import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import type { XapiClient } from '../../../src/xapi/client.js';
import { XapiError } from '../../../src/xapi/errors.js';
import { simClient, until } from './support.js';

/** The VIF and VM records a newly plugged port needs, fetched ahead of the port by the watcher. */
describe('XapiWatcher: records of VMs placed on this host are known before their ports appear', () => {
  let sim: Simulator;
  let client: XapiClient;
  let bridge: string;
  let n = 0;

  /** A halted VM with two VIFs, as XAPI holds it before VM.start. */
  function haltedVm(): { vm: string; vmUuid: string; vifs: string[] } {
    n += 1;
    const vm = sim.state.addVm({ name_label: `placed-${n}` });
    const vifs = ['0', '1'].map((device) => sim.state.addVif({ vm: vm.ref, network: bridge, device }).uuid);
    return { vm: vm.ref, vmUuid: vm.uuid, vifs };
  }

  const known = (uuid: string): boolean => client.watcher.cache.vif(uuid).state === 'known';
  const vmKnown = (uuid: string): boolean => client.watcher.cache.vm(uuid).state === 'known';

  beforeAll(async () => {
    sim = await startSimulator({ generate: { vms: 2, vifsPerVm: 1, hosts: 2 } });
    bridge = sim.localVifs()[0]!.bridge;
    client = simClient(sim);
    client.start();
    await until(() => client.watcher.phase === 'live');
  });

  afterAll(async () => {
    await client.close();
    await sim.close();
  });

  beforeEach(() => {
    sim.resetCounters();
  });

  it('VM.start: fetched when XAPI reserves this host, so the port needs no lookup', async () => {
    const placed = haltedVm();
    const task = sim.state.beginVmPlacement(placed.vm, sim.thisHost.ref);
    await until(() => placed.vifs.every(known) && vmKnown(placed.vmUuid));
    expect(sim.counters.calls['VM.get_all_records_where']).toBe(1);

    const calls = sim.counters.totalCalls;
    client.watcher.changeInterest({ addVifs: placed.vifs, removeVifs: [], addVms: [placed.vmUuid], removeVms: [] });
    // Known in the same turn: the pass that sees the port can write it.
    expect(placed.vifs.every(known) && vmKnown(placed.vmUuid)).toBe(true);
    expect(client.watcher.lookupsOutstanding).toBe(false);

    sim.state.completeVmPlacement(placed.vm, task, 7);
    await new Promise((r) => setTimeout(r, 50));
    expect(sim.counters.totalCalls - calls).toBeLessThanOrEqual(2); // the re-subscribing event.from
    expect(sim.counters.calls['VIF.get_all_records_where'] ?? 0).toBe(1); // the VIFs of the placed VM, once
  });

  it('follows events on what it fetched ahead: an override set before the port appears is seen', async () => {
    const placed = haltedVm();
    sim.state.beginVmPlacement(placed.vm, sim.thisHost.ref);
    await until(() => placed.vifs.every(known));
    sim.state.addToOtherConfig('VIF', placed.vifs[0]!, 'nicira-iface-id', 'ahead');
    await until(() => {
      const v = client.watcher.cache.vif(placed.vifs[0]!);
      return v.state === 'known' && v.record.otherConfig['nicira-iface-id'] === 'ahead';
    });
  });

  it('reboot: a resident VM keeps its records while its old ports go and its new ones come', async () => {
    const placed = haltedVm();
    const task = sim.state.beginVmPlacement(placed.vm, sim.thisHost.ref);
    await until(() => placed.vifs.every(known) && vmKnown(placed.vmUuid));
    sim.state.completeVmPlacement(placed.vm, task, 8);
    await new Promise((r) => setTimeout(r, 50));
    client.watcher.changeInterest({ addVifs: placed.vifs, removeVifs: [], addVms: [placed.vmUuid], removeVms: [] });

    client.watcher.changeInterest({ addVifs: [], removeVifs: placed.vifs, addVms: [], removeVms: [placed.vmUuid] });
    expect(placed.vifs.every(known) && vmKnown(placed.vmUuid)).toBe(true);
    client.watcher.changeInterest({ addVifs: placed.vifs, removeVifs: [], addVms: [placed.vmUuid], removeVms: [] });
    expect(client.watcher.lookupsOutstanding).toBe(false);
  });

  it('hot-plug: a VIF created on a running VM here is fetched from the VM event', async () => {
    const placed = haltedVm();
    const task = sim.state.beginVmPlacement(placed.vm, sim.thisHost.ref);
    sim.state.completeVmPlacement(placed.vm, task, 9);
    await until(() => placed.vifs.every(known));
    const plugged = sim.state.addVif({ vm: placed.vm, network: bridge, device: '2' }).uuid;
    await until(() => known(plugged));
    expect(sim.counters.calls['VIF.get_record']).toBe(1);
  });

  it('a VM arriving resident without notice is fetched with its VIFs', async () => {
    const placed = haltedVm();
    sim.state.updateVm(placed.vm, { resident_on: sim.thisHost.ref, power_state: 'Running', domid: 10 });
    await until(() => placed.vifs.every(known) && vmKnown(placed.vmUuid));
    expect(sim.counters.calls['VM.get_record']).toBe(1);
  });

  it('forgets what is no longer placed here (and no row refers to): VM halted, or its start failed', async () => {
    const halted = haltedVm();
    const t1 = sim.state.beginVmPlacement(halted.vm, sim.thisHost.ref);
    sim.state.completeVmPlacement(halted.vm, t1, 11);
    const failed = haltedVm();
    const t2 = sim.state.beginVmPlacement(failed.vm, sim.thisHost.ref);
    await until(() => [...halted.vifs, ...failed.vifs].every(known));
    // One of halted's ports still exists: that VIF stays; the rest goes.
    client.watcher.changeInterest({ addVifs: [halted.vifs[0]!], removeVifs: [], addVms: [], removeVms: [] });

    sim.state.updateVm(halted.vm, { resident_on: null, power_state: 'Halted', domid: -1 });
    sim.state.abortVmPlacement(failed.vm, t2);
    const cache = client.watcher.cache;
    await until(() => !cache.vifs.has(halted.vifs[1]!) && !cache.vms.has(halted.vmUuid) && !cache.vms.has(failed.vmUuid) && failed.vifs.every((u) => !cache.vifs.has(u)));
    expect(known(halted.vifs[0]!)).toBe(true);
  });

  it('a VM placed on another host is not fetched', async () => {
    const elsewhere = haltedVm();
    const other = sim.state.all('host').find((h) => h.ref !== sim.thisHost.ref)!;
    sim.state.beginVmPlacement(elsewhere.vm, other.ref);
    sim.state.updateVm(elsewhere.vm, { resident_on: other.ref, power_state: 'Running', domid: 3 });
    // A change on this host after those, to know the watcher has seen them.
    const marker = haltedVm();
    sim.state.beginVmPlacement(marker.vm, sim.thisHost.ref);
    await until(() => marker.vifs.every(known));
    expect(elsewhere.vifs.some((u) => client.watcher.cache.vifs.has(u))).toBe(false);
    expect(client.watcher.cache.vms.has(elsewhere.vmUuid)).toBe(false);
  });

  it('drops what it holds only for placement when XAPI becomes unreachable: a port plugged then is unknown', async () => {
    const placed = haltedVm();
    const task = sim.state.beginVmPlacement(placed.vm, sim.thisHost.ref);
    await until(() => placed.vifs.every(known));
    sim.state.completeVmPlacement(placed.vm, task, 13);
    await sim.faults.set({ down: true });
    try {
      await until(() => client.watcher.phase === 'down', 10_000);
      client.watcher.changeInterest({ addVifs: [placed.vifs[0]!], removeVifs: [], addVms: [], removeVms: [] });
      expect(client.watcher.cache.vif(placed.vifs[0]!).state).toBe('unknown');
    } finally {
      await sim.faults.set({ down: false });
    }
    await until(() => known(placed.vifs[0]!), 10_000);
  });

  it('a XAPI whose database lacks scheduled_to_be_resident_on is asked once; resident VMs are still fetched', async () => {
    const call = client.session.call.bind(client.session);
    const spy = vi.spyOn(client.session, 'call').mockImplementation(async (method, params, options) => {
      const filter = typeof params[0] === 'string' ? params[0] : '';
      if (method === 'VM.get_all_records_where' && filter.includes('scheduled_to_be_resident_on')) {
        // What xapi answers for a column its database lacks (ocaml/database/db_cache_types.ml:189).
        throw new XapiError('INTERNAL_ERROR', ['missing field', 'scheduled_to_be_resident_on', ''], method);
      }
      return call(method, params, options);
    });
    try {
      const first = haltedVm();
      const t1 = sim.state.beginVmPlacement(first.vm, sim.thisHost.ref);
      await until(() => spy.mock.calls.some(([m]) => m === 'VM.get_all_records_where'));
      const second = haltedVm();
      sim.state.beginVmPlacement(second.vm, sim.thisHost.ref);
      sim.state.completeVmPlacement(first.vm, t1, 12);
      await until(() => first.vifs.every(known));
      expect(spy.mock.calls.filter(([m]) => m === 'VM.get_all_records_where')).toHaveLength(1);
      expect(second.vifs.some((u) => client.watcher.cache.vifs.has(u))).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });
});
