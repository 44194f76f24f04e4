import { describe, expect, it } from 'vitest';
import { DependencyIndex } from '../../../src/reconcile/dependency-index.js';
import { DirtyTracker } from '../../../src/reconcile/dirty-tracker.js';
import { reconcileAll, reconcileDirty } from '../../../src/reconcile/row-selection.js';
import type { InterfaceRow, OvsdbView } from '../../../src/reconcile/views.js';
import { applyForBench, benchReconcile, buildScaleView } from '../../bench/reconcile.js';
import { bridge, FakeXapi, iface, NO_FACTS, ovsView } from './fixtures.js';

/** A Map that counts lookups and any form of iteration. */
class CountingMap<K, V> extends Map<K, V> {
  gets = 0;
  walks = 0;
  override get(key: K): V | undefined {
    this.gets++;
    return super.get(key);
  }
  override has(key: K): boolean {
    this.gets++;
    return super.has(key);
  }
  override values(): MapIterator<V> {
    this.walks++;
    return super.values();
  }
  override keys(): MapIterator<K> {
    this.walks++;
    return super.keys();
  }
  override entries(): MapIterator<[K, V]> {
    this.walks++;
    return super.entries();
  }
  override [Symbol.iterator](): MapIterator<[K, V]> {
    this.walks++;
    return super.entries();
  }
  override forEach(cb: (value: V, key: K, map: Map<K, V>) => void): void {
    this.walks++;
    super.forEach(cb);
  }
}

describe('reconcileDirty', () => {
  it('a removed tap reaches its vif through the deleted row name', () => {
    const vif = iface('i1', 'vif1.0', { 'iface-status': 'inactive' });
    const ovs = ovsView({ interfaces: [vif] });
    const result = reconcileDirty(ovs, new FakeXapi(), NO_FACTS, { interfaces: ['gone'], interfaceNames: ['tap1.0'] }, new DependencyIndex());
    expect(result.changes.map((c) => c.uuid)).toEqual(['i1']);
  });

  it('the pool reaches every bridge; a network reaches its bridge by name or by listed uuid', () => {
    const xapi = new FakeXapi().network('xenbr0', 'N1').network('xenbr1', 'N2');
    const ovs = ovsView({ bridges: [bridge('b0', 'xenbr0', { 'xs-network-uuids': 'N1' }), bridge('b1', 'xenbr1')] });
    const index = DependencyIndex.fromView(ovs);
    const uuids = (r: ReturnType<typeof reconcileAll>) => r.changes.map((c) => c.uuid);
    expect(uuids(reconcileDirty(ovs, xapi, NO_FACTS, { pool: true }, index))).toEqual(['b0', 'b1']);
    expect(uuids(reconcileDirty(ovs, xapi, NO_FACTS, { networks: ['N1'] }, index))).toEqual(['b0']);
    expect(uuids(reconcileDirty(ovs, xapi, NO_FACTS, { networkBridges: ['xenbr1'] }, index))).toEqual(['b1']);
    expect(uuids(reconcileDirty(ovs, xapi, NO_FACTS, {}, index))).toEqual([]);
    expect(reconcileDirty(ovs, xapi, NO_FACTS, { all: true }, index)).toEqual(reconcileAll(ovs, xapi, NO_FACTS));
  });

  it('one dirty interface among 8000 does not walk the interfaces', () => {
    const scale = buildScaleView(8000);
    const converged = applyForBench(scale.ovs, reconcileAll(scale.ovs, scale.xapi, scale.facts).changes);
    expect(reconcileAll(converged, scale.xapi, scale.facts).changes).toEqual([]);
    const index = DependencyIndex.fromView(converged);

    // A tap row replaced by a fresh one (new uuid, no facts yet), as after a domain restart.
    const old = [...converged.interfaces.values()].find((r) => r.name === 'tap7.2')!;
    const fresh: InterfaceRow = { uuid: 'fresh-tap', name: 'tap7.2', externalIds: new Map() };
    const interfaces = new CountingMap<string, InterfaceRow>(converged.interfaces);
    interfaces.delete(old.uuid);
    interfaces.set(fresh.uuid, fresh);
    const byName = new CountingMap<string, string>(converged.interfaceByName);
    byName.set(fresh.name, fresh.uuid);
    const view: OvsdbView = { ...converged, interfaces, interfaceByName: byName };
    const tracker = new DirtyTracker(index);
    tracker.interfaceChanged(old.uuid, undefined);
    tracker.interfaceChanged(fresh.uuid, fresh);
    interfaces.gets = byName.gets = 0;

    const result = reconcileDirty(view, scale.xapi, scale.facts, tracker.take(), index);
    expect(interfaces.walks).toBe(0);
    expect(byName.walks).toBe(0);
    expect(interfaces.gets + byName.gets).toBeLessThan(20);
    expect(result.changes.map((c) => c.uuid)).toEqual(['fresh-tap']);
    expect(result.changes[0]!.maps[0]!.set.map((e) => e.key)).toEqual([
      'attached-mac',
      'iface-id',
      'iface-status',
      'vm-id',
      'xs-network-uuid',
      'xs-vif-uuid',
      'xs-vm-uuid',
    ]);

    // The same for a VIF whose override changed in XAPI: only its vif/tap rows are visited.
    const vifUuid = fresh.name === 'tap7.2' ? view.interfaces.get(byName.get('vif7.2')!)!.externalIds.get('xs-vif-uuid')! : '';
    interfaces.gets = byName.gets = interfaces.walks = 0;
    reconcileDirty(view, scale.xapi, scale.facts, { vifs: [vifUuid] }, index);
    expect(interfaces.walks).toBe(0);
    expect(interfaces.gets + byName.gets).toBeLessThan(20);
  });

  it('benchReconcile returns numbers', () => {
    const out = benchReconcile();
    for (const key of ['reconcileFullColdMs', 'reconcileFullConvergedMs', 'reconcileDirtyOneMs']) {
      expect(typeof out[key]).toBe('number');
      expect(Number.isFinite(out[key])).toBe(true);
    }
    expect(out.reconcileFullColdChanges).toBeGreaterThan(8000);
  });
});
