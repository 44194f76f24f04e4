import { describe, expect, it } from 'vitest';
import { DependencyIndex } from '../../../src/reconcile/incremental.js';

const row = (name: string, ids: Record<string, string>) => ({ name, externalIds: new Map(Object.entries(ids)) });

describe('DependencyIndex.takeInterestDelta', () => {
  it('reports a VIF and VM when the first row names them and when the last one stops', () => {
    const index = new DependencyIndex();
    index.upsertInterface('i1', row('vif1.0', { 'xs-vif-uuid': 'V1', 'xs-vm-uuid': 'M1' }));
    index.upsertInterface('i2', row('tap1.0', { 'xs-vif-uuid': 'V1', 'xs-vm-uuid': 'M1' }));
    expect(index.takeInterestDelta()).toEqual({ addVifs: new Set(['V1']), removeVifs: new Set(), addVms: new Set(['M1']), removeVms: new Set() });
    expect(index.takeInterestDelta()).toEqual({ addVifs: new Set(), removeVifs: new Set(), addVms: new Set(), removeVms: new Set() });

    index.removeInterface('i1');
    expect(index.takeInterestDelta().removeVifs.size).toBe(0);
    index.removeInterface('i2');
    expect(index.takeInterestDelta()).toEqual({ addVifs: new Set(), removeVifs: new Set(['V1']), addVms: new Set(), removeVms: new Set(['M1']) });
  });

  it('follows a row whose xs-vif-uuid changes, and cancels a remove followed by an add', () => {
    const index = new DependencyIndex();
    index.upsertInterface('i1', row('vif1.0', { 'xs-vif-uuid': 'V1' }));
    index.takeInterestDelta();
    index.upsertInterface('i1', row('vif1.0', { 'xs-vif-uuid': 'V2' }));
    expect(index.takeInterestDelta()).toMatchObject({ addVifs: new Set(['V2']), removeVifs: new Set(['V1']) });
    index.removeInterface('i1');
    index.upsertInterface('i9', row('vif9.0', { 'xs-vif-uuid': 'V2' }));
    expect(index.takeInterestDelta()).toMatchObject({ addVifs: new Set(['V2']), removeVifs: new Set() });
    expect([...index.vifUuids()]).toEqual(['V2']);
  });
});
