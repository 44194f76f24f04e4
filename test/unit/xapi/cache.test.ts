import { describe, expect, it } from 'vitest';
import { XapiCache } from '../../../src/xapi/cache.js';
import type { NetworkRecord } from '../../../src/xapi/records.js';

const net = (ref: string, bridge: string, otherConfig: Record<string, string> = {}): NetworkRecord => ({
  ref,
  uuid: `00000000-0000-4000-8000-${ref.slice(-12).padStart(12, '0')}`,
  bridge,
  otherConfig,
});

describe('XapiCache.networks (keyed by bridge name)', () => {
  it('asks XAPI only about names a filter literal can carry, and only UUIDs for VIFs and VMs', () => {
    const cache = new XapiCache();
    expect(cache.networks.askable('xenbr0')).toBe(true);
    expect(cache.networks.askable('a"b')).toBe(false);
    expect(cache.networks.askable('')).toBe(false);
    expect(cache.vifs.askable('xenbr0')).toBe(false);
    expect(cache.vms.askable('00000000-0000-4000-8000-000000000001')).toBe(true);
    // Never looked up: unknown, unless XAPI could not be asked at all (the name of a bridge without one).
    expect(cache.networkByBridge('xenbr9').state).toBe('unknown');
    expect(cache.networkByBridge('').state).toBe('absent');
  });

  it('maps a known network ref back to its bridge name, follows it while known, and reports only real changes', () => {
    const cache = new XapiCache();
    expect(cache.networkByBridge('xenbr0').state).toBe('unknown');
    const changed = new Set<string>();
    cache.networks.set('xenbr0', { state: 'pending' }, changed);
    cache.networks.set('xenbr0', { state: 'known', record: net('OpaqueRef:1', 'xenbr0'), deleted: false }, changed);
    expect(changed).toEqual(new Set(['xenbr0']));
    expect(cache.networks.keyOf('OpaqueRef:1')).toBe('xenbr0');
    expect(cache.networks.liveRefs()).toEqual(['OpaqueRef:1']);

    changed.clear();
    cache.networks.set('xenbr0', { state: 'known', record: net('OpaqueRef:1', 'xenbr0'), deleted: false }, changed);
    expect(changed.size).toBe(0);
    cache.networks.set('xenbr0', { state: 'known', record: net('OpaqueRef:1', 'xenbr0', { 'nicira-bridge-id': 'b' }), deleted: false }, changed);
    expect(changed).toEqual(new Set(['xenbr0']));

    cache.networks.set('xenbr0', { state: 'absent' }, changed);
    expect(cache.networkByBridge('xenbr0').state).toBe('absent');
    expect(cache.networks.keyOf('OpaqueRef:1')).toBeUndefined();
    expect(cache.networks.liveRefs()).toEqual([]);

    cache.networks.set('xenbr0', { state: 'known', record: net('OpaqueRef:2', 'xenbr0'), deleted: false }, changed);
    cache.networks.delete('xenbr0');
    expect(cache.networks.keyOf('OpaqueRef:2')).toBeUndefined();
    expect(cache.networks.size).toBe(0);
  });
});
