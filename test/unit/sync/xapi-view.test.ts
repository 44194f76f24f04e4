import { describe, expect, it } from 'vitest';
import { CacheXapiView, type XapiSyncState } from '../../../src/sync/xapi-view.js';
import { XapiCache, emptyChange } from '../../../src/xapi/cache.js';
import type { XapiWatcherPhase } from '../../../src/xapi/watcher.js';

const VIF = '11111111-2222-4333-8444-555555555555';
const NETWORK = { ref: 'OpaqueRef:n0', uuid: '66666666-2222-4333-8444-555555555555', bridge: 'xenbr0', otherConfig: { 'nicira-bridge-id': 'b0' } };

function viewWith(phase: XapiWatcherPhase, synced: boolean, setup: (cache: XapiCache) => void = () => undefined) {
  const cache = new XapiCache();
  setup(cache);
  const state: XapiSyncState = { phase, synced };
  return new CacheXapiView(cache, () => state);
}

describe('CacheXapiView', () => {
  it.each<[XapiWatcherPhase, boolean, string]>([
    ['idle', false, 'unknown'],
    ['syncing', false, 'pending'],
    ['down', false, 'unknown'],
    ['live', true, 'absent'],
    ['down', true, 'absent'],
  ])('answers a missing singleton in phase %s (synced %s) as %s', (phase, synced, expected) => {
    const view = viewWith(phase, synced);
    expect(view.host().state).toBe(expected);
    expect(view.pool().state).toBe(expected);
  });

  it.each<[XapiWatcherPhase, string]>([
    ['idle', 'unknown'],
    ['down', 'unknown'],
    ['syncing', 'pending'],
    ['live', 'pending'],
  ])('answers a pending VIF or network lookup in phase %s as %s', (phase, expected) => {
    const view = viewWith(phase, phase === 'live', (cache) => {
      cache.vifs.set(VIF, { state: 'pending' }, new Set());
      cache.networks.set('xenbr0', { state: 'pending' }, new Set());
    });
    expect(view.vif(VIF).state).toBe(expected);
    expect(view.networkByBridge('xenbr0').state).toBe(expected);
  });

  it.each<[XapiWatcherPhase, boolean]>([
    ['live', true],
    ['down', true],
    ['syncing', false],
  ])('answers networks by bridge name from their lookups in phase %s (synced %s)', (phase, synced) => {
    const view = viewWith(phase, synced, (cache) => {
      const changed = new Set<string>();
      cache.networks.set('xenbr0', { state: 'known', deleted: false, record: NETWORK }, changed);
      cache.networks.set('xenbr1', { state: 'absent' }, changed);
      cache.networks.set('xapi9', { state: 'unknown' }, changed);
      expect(changed).toEqual(new Set(['xenbr0', 'xenbr1', 'xapi9']));
    });
    const known = view.networkByBridge('xenbr0');
    expect(known.state === 'known' && known.value.uuid).toBe(NETWORK.uuid);
    expect(known.state === 'known' && known.value.otherConfig.get('nicira-bridge-id')).toBe('b0');
    expect(view.networkByBridge('xenbr1').state).toBe('absent');
    expect(view.networkByBridge('xapi9').state).toBe('unknown');
    // A bridge name nobody asked about was never looked up: XAPI's answer is not known.
    expect(view.networkByBridge('xenbr7').state).toBe('unknown');
  });

  it('converts a known record once and keeps answering from it', () => {
    const view = viewWith('live', true, (cache) => {
      cache.vifs.set(
        VIF,
        { state: 'known', deleted: false, record: { ref: 'OpaqueRef:v', uuid: VIF, device: '0', MAC: 'm', VM: 'OpaqueRef:vm', network: 'OpaqueRef:n', otherConfig: { 'nicira-iface-id': 'x' } } },
        new Set(),
      );
      cache.setPool({ ref: 'OpaqueRef:p', uuid: 'p', master: 'OpaqueRef:h', otherConfig: { 'vswitch-controller-fail-mode': 'secure' } }, emptyChange());
    });
    const a = view.vif(VIF);
    const b = view.vif(VIF);
    expect(a.state).toBe('known');
    if (a.state !== 'known' || b.state !== 'known') return;
    expect(a.value.otherConfig.get('nicira-iface-id')).toBe('x');
    expect(a.value.otherConfig).toBe(b.value.otherConfig);
    const pool = view.pool();
    expect(pool.state === 'known' && pool.value.otherConfig.get('vswitch-controller-fail-mode')).toBe('secure');
  });
});
