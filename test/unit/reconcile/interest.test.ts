import { describe, expect, it } from 'vitest';
import { DependencyIndex } from '../../../src/reconcile/dependency-index.js';
import type { BridgeRow } from '../../../src/reconcile/views.js';

const row = (name: string, ids: Record<string, string>) => ({ name, externalIds: new Map(Object.entries(ids)) });
const bridge = (uuid: string, name: string, networkUuids?: string): BridgeRow => ({
  uuid,
  name,
  externalIds: new Map(networkUuids === undefined ? [] : [['xs-network-uuids', networkUuids]]),
  otherConfig: new Map(),
  failMode: undefined,
});
const none = { addVifs: new Set(), removeVifs: new Set(), addVms: new Set(), removeVms: new Set(), addBridges: new Set(), removeBridges: new Set() };

describe('DependencyIndex.takeInterestDelta', () => {
  it('reports a VIF and VM when the first row names them and when the last one stops', () => {
    const index = new DependencyIndex();
    index.upsertInterface('i1', row('vif1.0', { 'xs-vif-uuid': 'V1', 'xs-vm-uuid': 'M1' }));
    index.upsertInterface('i2', row('tap1.0', { 'xs-vif-uuid': 'V1', 'xs-vm-uuid': 'M1' }));
    expect(index.takeInterestDelta()).toEqual({ ...none, addVifs: new Set(['V1']), addVms: new Set(['M1']) });
    expect(index.takeInterestDelta()).toEqual(none);

    index.removeInterface('i1');
    expect(index.takeInterestDelta().removeVifs.size).toBe(0);
    index.removeInterface('i2');
    expect(index.takeInterestDelta()).toEqual({ ...none, removeVifs: new Set(['V1']), removeVms: new Set(['M1']) });
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

  it('reports a bridge name when the first Bridge row has it and when the last one goes', () => {
    const index = new DependencyIndex();
    index.upsertBridge('b1', bridge('b1', 'xenbr0', 'N0'));
    index.upsertBridge('b2', bridge('b2', 'xapi1'));
    expect(index.takeInterestDelta()).toEqual({ ...none, addBridges: new Set(['xenbr0', 'xapi1']) });
    expect([...index.bridgeNames()].sort()).toEqual(['xapi1', 'xenbr0']);

    // A modified row that keeps its name is never reported removed (at most added again, a no-op for the watcher).
    index.upsertBridge('b1', bridge('b1', 'xenbr0', 'N0;N1'));
    expect(index.takeInterestDelta().removeBridges).toEqual(new Set());

    index.removeBridge('b2');
    expect(index.takeInterestDelta()).toEqual({ ...none, removeBridges: new Set(['xapi1']) });
    expect([...index.bridgeNames()]).toEqual(['xenbr0']);
  });

  it('follows a renamed row, cancels a remove followed by an add, and ignores empty names', () => {
    const index = new DependencyIndex();
    index.upsertBridge('b1', bridge('b1', 'br-a'));
    index.takeInterestDelta();
    index.upsertBridge('b1', bridge('b1', 'br-b'));
    expect(index.takeInterestDelta()).toMatchObject({ addBridges: new Set(['br-b']), removeBridges: new Set(['br-a']) });

    index.removeBridge('b1');
    index.upsertBridge('b9', bridge('b9', 'br-b'));
    expect(index.takeInterestDelta()).toMatchObject({ addBridges: new Set(['br-b']), removeBridges: new Set() });

    index.upsertBridge('b0', bridge('b0', ''));
    expect(index.takeInterestDelta()).toEqual(none);
    expect([...index.bridgeNames()]).toEqual(['br-b']);
  });
});
