import { afterEach, describe, expect, it } from 'vitest';
import { XapiTransportError } from '../../../../src/xapi/errors.js';
import { harness, vifsOnly, type Harness } from './harness.js';
import { event, ref, token, uuid } from './scripted-xapi.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const undecodable = (method: string): XapiTransportError => new XapiTransportError('XAPI_PROTOCOL', 'malformed XML: unescaped name', { method });

/** Makes every answer of `method` that would mention `poison` undecodable, as xapi's unescaped `&` in a map key would. */
function poison(x: Harness['xapi'], method: string, poisonUuid: string): void {
  x.override(method, (params) => {
    const filter = typeof params[0] === 'string' ? params[0] : '';
    if (filter.includes(poisonUuid)) throw undecodable(method);
    const terms = [...filter.matchAll(/field "(\w+)"="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? ''] as const);
    const table = method.startsWith('VIF') ? x.vifs : x.vms;
    return Object.fromEntries([...table].filter(([, rec]) => terms.some(([col, v]) => rec[col] === v)));
  });
}

describe('LookupBatcher', () => {
  it('looks up what one turn added in one batch per class and applies the answers', async () => {
    h = harness();
    const [a, b] = [h.xapi.addVif(1, 2, 3), h.xapi.addVif(4, 2, 3)];
    h.watcher.start();
    await h.untilPolling();
    h.watcher.changeInterest(vifsOnly([a]));
    h.watcher.changeInterest(vifsOnly([b, uuid(99)]));
    expect(h.watcher.lookupsOutstanding).toBe(true);
    await h.clock.tick();
    expect(h.xapi.count('VIF.get_all_records_where')).toBe(1);
    expect([a, b].map((u) => h!.watcher.cache.vif(u).state)).toEqual(['known', 'known']);
    expect(h.watcher.cache.vif(uuid(99)).state).toBe('absent');
    expect(h.watcher.lookupsOutstanding).toBe(false);
  });

  it('rewinds the follower: the poll after a lookup starts from the token the lookup started at', async () => {
    h = harness();
    const vif = h.xapi.addVif(1, 2, 3);
    h.watcher.start();
    await h.untilPolling();
    const running = h.xapi.poll!;
    h.watcher.changeInterest(vifsOnly([vif]));
    await h.clock.tick();
    // The running poll returns past a change to the new VIF it was not subscribed to.
    running.answer([event('pool', 'mod', h.xapi.poolRef, h.xapi.pool)], token(150));
    await h.clock.tick();
    expect(h.xapi.poll!.token).toBe(running.token);
    expect(h.xapi.poll!.classes).toContain(`vif/${ref(1)}`);
  });

  it('contains an undecodable batch: its objects are asked one by one, only the one that still fails is unknown', async () => {
    h = harness({ lookupBatchSize: 10 });
    const [a, bad, c] = [h.xapi.addVif(1, 2, 3), h.xapi.addVif(4, 2, 3), h.xapi.addVif(5, 2, 3)];
    poison(h.xapi, 'VIF.get_all_records_where', bad);
    h.watcher.start();
    await h.untilPolling();
    h.watcher.changeInterest(vifsOnly([a, bad, c]));
    await h.clock.tick();
    expect(h.xapi.count('VIF.get_all_records_where')).toBe(4);
    expect([a, bad, c].map((u) => h!.watcher.cache.vif(u).state)).toEqual(['known', 'unknown', 'known']);
    expect(h.watcher.phase).toBe('live');
    expect(h.xapi.count('pool.get_all')).toBe(1); // no resync
    expect(h.logs.some((l) => l.msg.includes('cannot be decoded') && l.class === 'VIF' && l.key === bad)).toBe(true);
    expect(h.xapi.poll!.classes).not.toContain(`vif/${ref(4)}`);
  });

  it('contains an undecodable object at a sync too: the view goes live with the others known', async () => {
    h = harness();
    const [a, bad] = [h.xapi.addVif(1, 2, 3), h.xapi.addVif(4, 2, 3)];
    poison(h.xapi, 'VIF.get_all_records_where', bad);
    h.watcher.changeInterest(vifsOnly([a, bad]));
    h.watcher.start();
    await h.untilPolling();
    expect([a, bad].map((u) => h!.watcher.cache.vif(u).state)).toEqual(['known', 'unknown']);
    expect(h.phases).toEqual(['syncing', 'live']);
  });

  it('contains an undecodable network: that bridge is unknown, the others known', async () => {
    h = harness();
    h.xapi.addNetwork(0x30, 'xenbr0');
    h.xapi.addNetwork(0x31, 'xenbr1');
    h.xapi.override('network.get_other_config', (params) => {
      if (params[0] === ref(0x31)) throw undecodable('network.get_other_config');
      return {};
    });
    h.watcher.start();
    await h.untilPolling();
    h.watcher.changeInterest({ ...vifsOnly([]), addBridges: ['xenbr0', 'xenbr1'] });
    await h.clock.tick();
    expect(h.watcher.cache.networkByBridge('xenbr0').state).toBe('known');
    expect(h.watcher.cache.networkByBridge('xenbr1').state).toBe('unknown');
    expect(h.watcher.phase).toBe('live');
  });

  it('a failure other than decoding makes the asked objects unknown and resynchronises', async () => {
    h = harness();
    const vif = h.xapi.addVif(1, 2, 3);
    h.watcher.start();
    await h.untilPolling();
    const states: string[] = [];
    h.watcher.on('change', (c) => {
      if (c.vifs.has(vif)) states.push(h!.watcher.cache.vif(vif).state);
    });
    h.xapi.override('VIF.get_all_records_where', () => {
      h!.xapi.override('VIF.get_all_records_where', undefined);
      throw new XapiTransportError('XAPI_TRANSPORT', 'ECONNRESET');
    });
    h.watcher.changeInterest(vifsOnly([vif]));
    await h.untilPolling();
    expect(states).toEqual(['pending', 'unknown', 'known']);
    expect(h.xapi.count('pool.get_all')).toBe(2);
    expect(h.watcher.cache.vif(vif).state).toBe('known');
  });
});
