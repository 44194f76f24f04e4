import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import type { XapiClient } from '../../../src/xapi/client.js';
import { XapiTransportError } from '../../../src/xapi/errors.js';
import { simClient, until } from './support.js';

describe('XapiWatcher: an event.from answer that cannot be decoded', () => {
  let sim: Simulator;
  let client: XapiClient;

  beforeAll(async () => {
    sim = await startSimulator({ generate: { vms: 2, vifsPerVm: 1, hosts: 1 } });
    client = simClient(sim);
    client.start();
    const vif = sim.localVifs()[0]!;
    client.watcher.changeInterest({ addVifs: [vif.vifUuid], removeVifs: [], addVms: [], removeVms: [] });
    await until(() => client.watcher.phase === 'live' && client.watcher.cache.vif(vif.vifUuid).state === 'known');
  });

  afterAll(async () => {
    await client.close();
    await sim.close();
  });

  /** The next `count` event.from answers fail to decode; returns the calls made meanwhile. */
  function garbleEventFrom(count: number): { methods: string[]; restore: () => void } {
    const call = client.session.call.bind(client.session);
    const methods: string[] = [];
    let left = count;
    const spy = vi.spyOn(client.session, 'call').mockImplementation(async (method, params, options) => {
      methods.push(method);
      const answer = await call(method, params, options);
      if (method === 'event.from' && left > 0) {
        left -= 1;
        throw new XapiTransportError('XAPI_PROTOCOL', 'malformed XML: Unclosed root tag', { method });
      }
      return answer;
    });
    return { methods, restore: () => { spy.mockRestore(); } };
  }

  it('asks again from the same token once, without a resync, and loses no event', async () => {
    const vif = sim.localVifs()[0]!;
    const garbled = garbleEventFrom(1);
    try {
      sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'after-garbage');
      await until(() => {
        const v = client.watcher.cache.vif(vif.vifUuid);
        return v.state === 'known' && v.record.otherConfig['nicira-iface-id'] === 'after-garbage';
      });
      expect(garbled.methods.filter((m) => m !== 'event.from')).toEqual([]);
      expect(client.watcher.phase).toBe('live');
    } finally {
      garbled.restore();
    }
  });

  it('resynchronises after two in a row', async () => {
    const vif = sim.localVifs()[0]!;
    const garbled = garbleEventFrom(2);
    try {
      sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-vm-note', 'twice');
      await until(() => garbled.methods.includes('event.inject'), 10_000);
      await until(() => client.watcher.phase === 'live');
    } finally {
      garbled.restore();
    }
  });
});
