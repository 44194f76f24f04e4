import { describe, expect, it } from 'vitest';
import { DirtyTracker } from '../../../src/reconcile/dirty-tracker.js';
import { iface } from './fixtures.js';

describe('DirtyTracker', () => {
  it('records names of inserted and deleted rows, take() resets, restore() merges back', () => {
    const tracker = new DirtyTracker();
    tracker.interfaceChanged('i1', iface('i1', 'tap1.0'));
    tracker.interfaceChanged('i1', iface('i1', 'tap1.0', { a: 'b' }));
    tracker.vifChanged('V1');
    tracker.networkChanged({ uuid: 'N1', bridge: 'xenbr0' });
    expect(tracker.isClean).toBe(false);
    const first = tracker.take();
    expect(tracker.isClean).toBe(true);
    expect([...(first.interfaceNames ?? [])]).toEqual(['tap1.0']);
    expect([...(first.interfaces ?? [])]).toEqual(['i1']);
    tracker.interfaceChanged('i1', undefined);
    const second = tracker.take();
    expect([...(second.interfaceNames ?? [])]).toEqual(['tap1.0']);
    tracker.restore(first);
    const merged = tracker.take();
    expect([...(merged.vifs ?? [])]).toEqual(['V1']);
    expect([...(merged.networkBridges ?? [])]).toEqual(['xenbr0']);
  });
});
