import { afterEach, describe, expect, it } from 'vitest';
import { harness, vifsOnly, type Harness } from './harness.js';
import { event, ref, token } from './scripted-xapi.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

describe('CrowdedNetworks', () => {
  it('leaves a network listing more VIFs than the limit out of the subscriptions and re-reads it on the clock', async () => {
    h = harness({ crowdedNetworkVifs: 2, networkRefreshMs: 10_000 });
    h.xapi.addNetwork(0x30, 'xenbr0');
    h.watcher.changeInterest({ ...vifsOnly([]), addBridges: ['xenbr0'] });
    h.watcher.start();
    await h.untilPolling();
    expect(h.xapi.poll!.classes).toContain(`network/${ref(0x30)}`);
    const snapshot = { ...h.xapi.networks.get(ref(0x30))!, VIFs: [ref(1), ref(2), ref(3)] };
    h.xapi.poll!.answer([event('network', 'mod', ref(0x30), snapshot)], token(110));
    await h.clock.tick();
    expect(h.xapi.poll!.classes).not.toContain(`network/${ref(0x30)}`);

    h.xapi.networks.set(ref(0x30), { ...h.xapi.networks.get(ref(0x30))!, other_config: { 'nicira-bridge-id': 'b0' } });
    await h.clock.advance(9_999);
    expect(h.xapi.count('network.get_other_config')).toBe(1);
    await h.clock.advance(1);
    const n = h.watcher.cache.networkByBridge('xenbr0');
    expect(n.state === 'known' && n.record.otherConfig['nicira-bridge-id']).toBe('b0');

    h.xapi.networks.delete(ref(0x30));
    await h.clock.advance(10_000);
    expect(h.watcher.cache.networkByBridge('xenbr0').state).toBe('absent');
    const reads = h.xapi.count('network.get_uuid');
    await h.clock.advance(30_000);
    expect(h.xapi.count('network.get_uuid')).toBe(reads);
  });
});
