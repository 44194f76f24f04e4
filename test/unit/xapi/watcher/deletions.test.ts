import { afterEach, describe, expect, it } from 'vitest';
import { harness, vifsOnly, type Harness } from './harness.js';
import { event, ref, token } from './scripted-xapi.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

/** A followed VIF and VM; XAPI then deletes the VIF without the follower ever hearing its `del`. */
async function followedThenLost(options: Parameters<typeof harness>[0] = {}): Promise<{ vif: string; other: string }> {
  h = harness(options);
  const vif = h.xapi.addVif(1, 2, 3);
  const other = h.xapi.addVif(4, 2, 3);
  h.watcher.changeInterest(vifsOnly([vif, other]));
  h.watcher.start();
  await h.untilPolling();
  const poll = h.xapi.poll!;
  poll.answer([], poll.token, { vif: 40, vm: 10, network: 3 });
  await h.clock.tick();
  h.xapi.vifs.delete(ref(1)); // its del fell out of xapi's bounded queue of deleted rows
  return { vif, other };
}

describe('DeletionAudit: deletions xapi no longer reports', () => {
  it('a drop in valid_ref_counts.vif beyond the answer\'s dels marks a followed VIF XAPI no longer has deleted', async () => {
    const { vif, other } = await followedThenLost();
    const poll = h!.xapi.poll!;
    poll.answer([], poll.token, { vif: 38, vm: 10, network: 3 });
    await h!.clock.tick();
    expect(h!.xapi.count('VIF.get_all_where')).toBe(1);
    const lost = h!.watcher.cache.vif(vif);
    expect(lost.state === 'known' && lost.deleted).toBe(true);
    const kept = h!.watcher.cache.vif(other);
    expect(kept.state === 'known' && !kept.deleted).toBe(true);
  });

  it('a drop the answer\'s own dels explain asks nothing', async () => {
    await followedThenLost();
    const poll = h!.xapi.poll!;
    poll.answer([event('vif', 'del', ref(1))], token(101), { vif: 39, vm: 10, network: 3 });
    await h!.clock.tick();
    expect(h!.xapi.count('VIF.get_all_where')).toBe(0);
  });

  it('checks at most once per deletionCheckMs', async () => {
    await followedThenLost({ deletionCheckMs: 60_000 });
    for (const count of [38, 37]) {
      const poll = h!.xapi.poll!;
      poll.answer([], poll.token, { vif: count, vm: 10, network: 3 });
      await h!.clock.tick();
    }
    expect(h!.xapi.count('VIF.get_all_where')).toBe(1);
    await h!.clock.advance(60_000);
    expect(h!.xapi.count('VIF.get_all_where')).toBe(2);
  });

  it('the periodic resync catches it too', async () => {
    const { vif } = await followedThenLost();
    h!.watcher.requestResync();
    await h!.untilPolling();
    const lost = h!.watcher.cache.vif(vif);
    expect(lost.state === 'known' && lost.deleted).toBe(true);
  });

  it('a drop in the network count asks the bridge names known again: a network deleted unreported becomes absent', async () => {
    h = harness();
    h.xapi.addNetwork(0x30, 'xenbr0');
    h.watcher.changeInterest({ ...vifsOnly([]), addBridges: ['xenbr0'] });
    h.watcher.start();
    await h.untilPolling();
    let poll = h.xapi.poll!;
    poll.answer([], poll.token, { network: 3 });
    await h.clock.tick();
    expect(h.watcher.cache.networkByBridge('xenbr0').state).toBe('known');
    h.xapi.networks.delete(ref(0x30));
    poll = h.xapi.poll!;
    poll.answer([], poll.token, { network: 2 });
    await h.clock.tick();
    expect(h.watcher.cache.networkByBridge('xenbr0').state).toBe('absent');
  });
});
