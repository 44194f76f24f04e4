import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import type { XapiClient } from '../../../src/xapi/client.js';
import { simClient, until } from './support.js';

describe('XapiWatcher.changeInterest', () => {
  let sim: Simulator;
  let client: XapiClient;

  beforeAll(async () => {
    sim = await startSimulator({ generate: { vms: 3, vifsPerVm: 2, hosts: 1 } });
    client = simClient(sim);
    client.start();
    await until(() => client.watcher.phase === 'live');
  });

  afterAll(async () => {
    await client.close();
    await sim.close();
  });

  it('looks up added uuids in one batch, forgets removed ones, and ignores repeats', async () => {
    const [a] = sim.localVifs();
    // A VIF of a halted VM: nothing keeps its record once no row refers to it (see placement.test.ts).
    const halted = sim.state.addVm({ name_label: 'halted' });
    const b = { vifUuid: sim.state.addVif({ vm: halted.ref, network: a!.bridge, device: '0' }).uuid };
    sim.resetCounters();
    client.watcher.changeInterest({ addVifs: [a!.vifUuid, b.vifUuid], removeVifs: [], addVms: [a!.vmUuid], removeVms: [] });
    expect(client.watcher.cache.vif(a!.vifUuid).state).toBe('pending');
    await until(() => client.watcher.cache.vif(a!.vifUuid).state === 'known' && client.watcher.cache.vif(b.vifUuid).state === 'known');
    await until(() => client.watcher.cache.vm(a!.vmUuid).state === 'known');
    expect(sim.counters.calls['VIF.get_all_records_where']).toBe(1);

    client.watcher.changeInterest({ addVifs: [a!.vifUuid], removeVifs: [b.vifUuid], addVms: [], removeVms: ['00000000-0000-4000-8000-000000000000'] });
    expect(client.watcher.cache.vifs.has(b.vifUuid)).toBe(false);
    expect(client.watcher.cache.vif(a!.vifUuid).state).toBe('known');
    await new Promise((r) => setTimeout(r, 20));
    expect(sim.counters.calls['VIF.get_all_records_where']).toBe(1);
  });

  it('puts the lookup on the wire before work already queued for the next turn (a reconcile pass) runs', async () => {
    const fresh = sim.localVifs()[3]!;
    const call = vi.spyOn(client.session, 'call');
    try {
      let lookupsAtNextTurn = -1;
      setImmediate(() => {
        lookupsAtNextTurn = call.mock.calls.filter(([method]) => method === 'VIF.get_all_records_where').length;
      });
      client.watcher.changeInterest({ addVifs: [fresh.vifUuid], removeVifs: [], addVms: [], removeVms: [] });
      await until(() => client.watcher.cache.vif(fresh.vifUuid).state === 'known');
      expect(lookupsAtNextTurn).toBe(1);
    } finally {
      call.mockRestore();
    }
  });

  it('does not lose a change made to a newly followed object before the long-poll subscribes to it', async () => {
    const vifs = sim.localVifs();
    const followed = vifs[2]!;
    const fresh = vifs.find((v) => v.vmUuid !== followed.vmUuid && v.vifUuid !== followed.vifUuid)!;
    client.watcher.changeInterest({ addVifs: [], removeVifs: [], addVms: [followed.vmUuid], removeVms: [] });
    await until(() => client.watcher.cache.vm(followed.vmUuid).state === 'known');
    await new Promise((r) => setTimeout(r, 50));

    for (let round = 0; round < 5; round++) {
      client.watcher.changeInterest({ addVifs: [fresh.vifUuid], removeVifs: [], addVms: [], removeVms: [] });
      await until(() => client.watcher.cache.vif(fresh.vifUuid).state === 'known');
      // Right after the lookup: a change to the new VIF, then one to an object the running poll already
      // follows, which makes that poll return with a token past the VIF's change.
      sim.state.addToOtherConfig('VIF', fresh.vifUuid, 'nicira-iface-id', `round-${round}`);
      sim.state.addToOtherConfig('VM', followed.vmUuid, 'nicira-vm-id', `round-${round}`);
      await until(() => {
        const lookup = client.watcher.cache.vif(fresh.vifUuid);
        return lookup.state === 'known' && lookup.record.otherConfig['nicira-iface-id'] === `round-${round}`;
      }, 2000);
      sim.state.removeFromOtherConfig('VIF', fresh.vifUuid, 'nicira-iface-id');
      sim.state.removeFromOtherConfig('VM', followed.vmUuid, 'nicira-vm-id');
      client.watcher.changeInterest({ addVifs: [], removeVifs: [fresh.vifUuid], addVms: [], removeVms: [] });
      await new Promise((r) => setTimeout(r, 30));
    }
  });
});
