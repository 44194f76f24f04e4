import { describe, expect, it } from 'vitest';
import { DependencyIndex } from '../../../src/reconcile/dependency-index.js';
import { DirtyTracker } from '../../../src/reconcile/dirty-tracker.js';
import { reconcileAll, reconcileDirty } from '../../../src/reconcile/row-selection.js';
import type { InterfaceRow, OvsdbView } from '../../../src/reconcile/views.js';
import { applyChangeSet, bridge, FakeXapi, iface, NO_FACTS, ovsView } from './fixtures.js';

/**
 * The sequence the old daemon was tested with (ovs-xapi-sync.at, docs/xapi.md §6): bridges, then a
 * vif, then its tap, then the tap removed. Each step converges in one pass, full and incremental alike.
 */
describe('the old daemon test sequence', () => {
  const NET1 = '9b66c68b-a74e-4d34-89a5-20a8ab352d1e';
  const NET2 = 'e1c9bc3a-0cc5-4c25-8a1d-6f3b6a4a5b0f';
  const VIF = '6ab1b260-f624-4ccf-8c2e-4f5d4a2f1b30';
  const VM = 'fcb8a3f6-dc04-41d2-8b8a-55afd2c755b8';
  const MAC = '00:11:22:33:44:55';
  const xapi = new FakeXapi()
    .network('xenbr0', NET1, { 'nicira-bridge-id': 'custom bridge ID', 'vswitch-controller-fail-mode': 'secure' })
    .network('xenbr1', NET2, { 'vswitch-disable-in-band': 'true' })
    .vifRec(VIF, { 'nicira-iface-id': 'custom iface ID' })
    .vmRec(VM, { 'nicira-vm-id': 'custom vm ID' });
  xapi.poolState = { state: 'known', value: { otherConfig: new Map([['vswitch-controller-fail-mode', 'secure']]) } };

  let db: OvsdbView = ovsView({
    bridges: [
      bridge('br-0', 'xenbr0', { 'xs-network-uuids': NET1 }),
      bridge('br-1', 'xenbr1', { 'xs-network-uuids': NET2 }),
    ],
  });
  const tracker = new DirtyTracker(DependencyIndex.fromView(db));

  /** Applies a pass; checks the incremental pass agrees with the full one and that a second pass is empty. */
  function converge(): void {
    const full = reconcileAll(db, xapi, NO_FACTS);
    const dirty = reconcileDirty(db, xapi, NO_FACTS, tracker.take(), tracker.index);
    expect(dirty.changes).toEqual(full.changes);
    db = applyChangeSet(db, full.changes);
    for (const change of full.changes) {
      if (change.table === 'Interface') tracker.interfaceChanged(change.uuid, db.interfaces.get(change.uuid));
    }
    expect(reconcileAll(db, xapi, NO_FACTS).changes).toEqual([]);
    expect(reconcileDirty(db, xapi, NO_FACTS, tracker.take(), tracker.index).changes).toEqual([]);
  }

  function addInterface(row: InterfaceRow): void {
    const interfaces = new Map(db.interfaces).set(row.uuid, row);
    const byName = new Map(db.interfaceByName).set(row.name, row.uuid);
    db = { ...db, interfaces, interfaceByName: byName };
    tracker.interfaceChanged(row.uuid, row);
  }

  function removeInterface(uuid: string): void {
    const row = db.interfaces.get(uuid)!;
    const interfaces = new Map(db.interfaces);
    interfaces.delete(uuid);
    const byName = new Map(db.interfaceByName);
    byName.delete(row.name);
    db = { ...db, interfaces, interfaceByName: byName };
    tracker.interfaceChanged(uuid, undefined);
  }

  const ext = (uuid: string) => Object.fromEntries(db.interfaces.get(uuid)!.externalIds);

  it('bridges: fail_mode from the network or else the pool, bridge-id from nicira-bridge-id; disable-in-band', () => {
    tracker.markAll();
    converge();
    const br0 = db.bridges.get('br-0')!;
    expect(br0.failMode).toBe('secure');
    expect(br0.externalIds.get('bridge-id')).toBe('custom bridge ID');
    const br1 = db.bridges.get('br-1')!;
    expect(br1.failMode).toBe('secure'); // from the pool
    expect(br1.externalIds.get('bridge-id')).toBe(NET2);
    expect(br1.otherConfig.get('disable-in-band')).toBe('true');
  });

  it('a vif with the four xs keys gets the custom ids and iface-status=active', () => {
    addInterface(iface('if-vif', 'vif1.0', { 'attached-mac': MAC, 'xs-network-uuid': NET1, 'xs-vif-uuid': VIF, 'xs-vm-uuid': VM }));
    converge();
    expect(ext('if-vif')).toEqual({
      'attached-mac': MAC,
      'xs-network-uuid': NET1,
      'xs-vif-uuid': VIF,
      'xs-vm-uuid': VM,
      'iface-id': 'custom iface ID',
      'vm-id': 'custom vm ID',
      'iface-status': 'active',
      'neutron-port-uuid': 'custom iface ID',
    });
  });

  it('adding its tap makes the tap active with the same ids and the vif inactive', () => {
    addInterface(iface('if-tap', 'tap1.0'));
    converge();
    expect(ext('if-tap')).toEqual({
      'attached-mac': MAC,
      'xs-network-uuid': NET1,
      'xs-vif-uuid': VIF,
      'xs-vm-uuid': VM,
      'iface-id': 'custom iface ID',
      'vm-id': 'custom vm ID',
      'iface-status': 'active',
    });
    expect(ext('if-vif')['iface-status']).toBe('inactive');
  });

  it('neutron-port-uuid follows the VIF on the vif only (XenServer 8 / XCP-ng 8.3, issue 13 §5)', () => {
    xapi.vifRec(VIF, { 'neutron-port-uuid': 'port-uuid', 'nicira-iface-id': 'custom iface ID' });
    tracker.vifChanged(VIF);
    converge();
    expect(ext('if-vif')['neutron-port-uuid']).toBe('port-uuid');
    expect(ext('if-tap')['neutron-port-uuid']).toBeUndefined();
    xapi.vifRec(VIF, {});
    tracker.vifChanged(VIF);
    converge();
    expect(ext('if-vif')['neutron-port-uuid']).toBeUndefined();
    expect(ext('if-vif')['iface-id']).toBe(VIF);
  });

  it('removing the tap makes the vif active again', () => {
    removeInterface('if-tap');
    converge();
    expect(ext('if-vif')['iface-status']).toBe('active');
  });
});
