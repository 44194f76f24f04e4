import { performance } from 'node:perf_hooks';
import type { ChangeSet } from '../../src/reconcile/changeset.js';
import { DependencyIndex } from '../../src/reconcile/dependency-index.js';
import { reconcileAll, reconcileDirty } from '../../src/reconcile/row-selection.js';
import type {
  BridgeRow,
  InterfaceRow,
  OvsdbView,
  SystemFacts,
  XapiNetwork,
  XapiObjectState,
  XapiView,
  XapiVif,
  XapiVm,
} from '../../src/reconcile/views.js';

/**
 * Reconciler cost at hypervisor scale: a full pass and a one-dirty-row pass over `interfaces` rows
 * (vif/tap pairs on a handful of bridges). Pure CPU, no I/O; a measurement, never a pass/fail test.
 */

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

function uuidOf(kind: number, n: number): string {
  return `${hex(kind, 8)}-0000-4000-8000-${hex(n, 12)}`;
}

const BRIDGES = 8;

/** A scale view: `interfaces` rows as vif/tap pairs with hotplug facts, plus its XAPI view, unconverged. */
export function buildScaleView(interfaces: number): { ovs: OvsdbView; xapi: XapiView; facts: SystemFacts } {
  const bridges = new Map<string, BridgeRow>();
  const networks = new Map<string, XapiObjectState<XapiNetwork>>();
  for (let b = 0; b < BRIDGES; b++) {
    const name = `xenbr${b}`;
    const net = uuidOf(1, b);
    bridges.set(uuidOf(2, b), {
      uuid: uuidOf(2, b),
      name,
      externalIds: new Map([['xs-network-uuids', net]]),
      otherConfig: new Map(),
      failMode: undefined,
    });
    const other = new Map<string, string>();
    if (b % 2 === 1) other.set('vswitch-controller-fail-mode', 'secure');
    networks.set(name, { state: 'known', value: { uuid: net, otherConfig: other } });
  }

  const rows = new Map<string, InterfaceRow>();
  const byName = new Map<string, string>();
  const vifs = new Map<string, XapiObjectState<XapiVif>>();
  const vms = new Map<string, XapiObjectState<XapiVm>>();
  const pairs = Math.ceil(interfaces / 2);
  for (let p = 0; p < pairs; p++) {
    const domid = 1 + Math.floor(p / 4);
    const devid = p % 4;
    const vif = uuidOf(3, p);
    const vm = uuidOf(4, domid);
    const facts = new Map([
      ['attached-mac', `00:16:3e:${hex((p >> 16) & 0xff, 2)}:${hex((p >> 8) & 0xff, 2)}:${hex(p & 0xff, 2)}`],
      ['xs-network-uuid', uuidOf(1, p % BRIDGES)],
      ['xs-vif-uuid', vif],
      ['xs-vm-uuid', vm],
    ]);
    const names = [`vif${domid}.${devid}`, `tap${domid}.${devid}`];
    for (let i = 0; i < 2 && rows.size < interfaces; i++) {
      const uuid = uuidOf(5 + i, p);
      const name = names[i] ?? '';
      rows.set(uuid, { uuid, name, externalIds: i === 0 ? facts : new Map() });
      byName.set(name, uuid);
    }
    const vifOther = new Map<string, string>();
    if (p % 10 === 0) vifOther.set('nicira-iface-id', `iface-${p}`);
    vifs.set(vif, { state: 'known', value: { uuid: vif, otherConfig: vifOther } });
    vms.set(vm, { state: 'known', value: { uuid: vm, otherConfig: new Map() } });
  }

  const absent = { state: 'absent' } as const;
  const xapi: XapiView = {
    host: () => ({ state: 'known', value: { uuid: uuidOf(9, 0), softwareVersion: new Map() } }),
    pool: () => ({ state: 'known', value: { otherConfig: new Map() } }),
    networkByBridge: (name) => networks.get(name) ?? absent,
    vif: (uuid) => vifs.get(uuid) ?? absent,
    vm: (uuid) => vms.get(uuid) ?? absent,
  };
  const ovs: OvsdbView = {
    root: { uuid: uuidOf(8, 0), externalIds: new Map(), otherConfig: new Map(), systemType: undefined, systemVersion: undefined },
    bridges,
    interfaces: rows,
    interfaceByName: byName,
  };
  return { ovs, xapi, facts: { inventory: { installationUuid: uuidOf(9, 0) }, enableStatistics: false } };
}

/** `view` after the ChangeSet is written (the ovsdb layer's mutate semantics, for the bench only). */
export function applyForBench(view: OvsdbView, changes: ChangeSet): OvsdbView {
  const interfaces = new Map(view.interfaces);
  const bridges = new Map(view.bridges);
  const mutate = (m: ReadonlyMap<string, string>, column: string, change: ChangeSet[number]) => {
    const mc = change.maps.find((c) => c.column === column);
    if (mc === undefined) return m;
    const next = new Map(m);
    for (const k of mc.remove) next.delete(k);
    for (const e of mc.set) next.set(e.key, e.value);
    return next;
  };
  let root = view.root;
  for (const c of changes) {
    if (c.table === 'Interface') {
      const row = interfaces.get(c.uuid);
      if (row) interfaces.set(c.uuid, { ...row, externalIds: mutate(row.externalIds, 'external_ids', c) });
    } else if (c.table === 'Bridge') {
      const row = bridges.get(c.uuid);
      const fm = c.scalars.find((s) => s.column === 'fail_mode');
      if (row) {
        bridges.set(c.uuid, {
          ...row,
          externalIds: mutate(row.externalIds, 'external_ids', c),
          otherConfig: mutate(row.otherConfig, 'other_config', c),
          failMode: fm === undefined ? row.failMode : (fm.value ?? undefined),
        });
      }
    } else if (root !== undefined) {
      root = { ...root, externalIds: mutate(root.externalIds, 'external_ids', c) };
    }
  }
  return { ...view, root, bridges, interfaces };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function time(runs: number, fn: () => void): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  return Math.round(median(samples) * 1000) / 1000;
}

/**
 * Median milliseconds over several runs at 8000 interfaces: `reconcileFullColdMs` (nothing converged:
 * every row changes), `reconcileFullConvergedMs` (the periodic resync on a converged database),
 * `reconcileDirtyOneMs` (one new tap: the per-port cost), and `reconcileIndexBuildMs`.
 */
export function benchReconcile(): Record<string, number> {
  const SIZE = 8000;
  const RUNS = 7;
  const { ovs, xapi, facts } = buildScaleView(SIZE);
  const cold = reconcileAll(ovs, xapi, facts);
  const converged = applyForBench(ovs, cold.changes);

  // One tap re-added after convergence: its uuid changes, its partner vif must flip to inactive.
  const tapUuid = [...converged.interfaces.values()].find((r) => r.name.startsWith('tap'))?.uuid ?? '';
  const index = DependencyIndex.fromView(converged);
  const dirty = { interfaces: [tapUuid] };

  return {
    reconcileInterfaces: SIZE,
    reconcileFullColdMs: time(RUNS, () => reconcileAll(ovs, xapi, facts)),
    reconcileFullColdChanges: cold.changes.length,
    reconcileFullConvergedMs: time(RUNS, () => reconcileAll(converged, xapi, facts)),
    reconcileDirtyOneMs: time(RUNS * 3, () => reconcileDirty(converged, xapi, facts, dirty, index)),
    reconcileIndexBuildMs: time(RUNS, () => DependencyIndex.fromView(converged)),
  };
}
