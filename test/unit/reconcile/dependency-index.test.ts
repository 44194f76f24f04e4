import { describe, expect, it } from 'vitest';
import { DependencyIndex } from '../../../src/reconcile/dependency-index.js';
import { bridge, iface } from './fixtures.js';

describe('DependencyIndex', () => {
  it('maps VIF / VM uuids, bridge names and network uuids to rows, incrementally', () => {
    const index = new DependencyIndex();
    index.upsertInterface('i1', iface('i1', 'vif1.0', { 'xs-vif-uuid': 'V1', 'xs-vm-uuid': 'M1' }));
    index.upsertInterface('i2', iface('i2', 'tap1.0', { 'xs-vif-uuid': 'V1', 'xs-vm-uuid': 'M1' }));
    index.upsertBridge('b1', bridge('b1', 'xenbr0', { 'xs-network-uuids': 'N1; N2;' }));
    expect([...index.interfacesWithVif('V1')].sort()).toEqual(['i1', 'i2']);
    expect([...index.interfacesWithVm('M1')].sort()).toEqual(['i1', 'i2']);
    expect([...index.bridgesWithNetwork('N2')]).toEqual(['b1']);
    expect([...index.bridgesNamed('xenbr0')]).toEqual(['b1']);

    index.upsertInterface('i2', iface('i2', 'tap1.0', { 'xs-vif-uuid': 'V2' }));
    expect([...index.interfacesWithVif('V1')]).toEqual(['i1']);
    expect([...index.interfacesWithVif('V2')]).toEqual(['i2']);
    expect([...index.interfacesWithVm('M1')]).toEqual(['i1']);
    expect(index.removeInterface('i1')).toBe('vif1.0');
    expect(index.removeInterface('i1')).toBeUndefined();
    expect(index.interfacesWithVif('V1').size).toBe(0);
    index.upsertBridge('b1', bridge('b1', 'xenbr0', { 'xs-network-uuids': 'N3' }));
    expect(index.bridgesWithNetwork('N1').size).toBe(0);
    index.removeBridge('b1');
    expect(index.bridgesNamed('xenbr0').size).toBe(0);
    expect(index.size).toEqual({ interfaces: 1, bridges: 0 });
  });
});
