import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COPIED_TAP_KEYS, MANAGED_KEYS, OWNED, ownsMapKey, ownsScalar } from '../../../src/reconcile/changeset.js';
import type { ManagedKey } from '../../../src/reconcile/changeset.js';
import type { ReconcileResult } from '../../../src/reconcile/changeset.js';
import { DependencyIndex } from '../../../src/reconcile/dependency-index.js';
import { DirtyTracker } from '../../../src/reconcile/dirty-tracker.js';
import { reconcileAll, reconcileDirty } from '../../../src/reconcile/row-selection.js';
import { interfaceRole, manages } from '../../../src/reconcile/rules.js';
import type {
  BridgeRow,
  InterfaceRow,
  OpenVSwitchRow,
  OvsdbView,
  SystemFacts,
  XapiHost,
  XapiNetwork,
  XapiObjectState,
  XapiPool,
  XapiView,
  XapiVif,
  XapiVm,
} from '../../../src/reconcile/views.js';
import { applyChangeSet, ROOT_UUID } from './fixtures.js';

// ---------------------------------------------------------------------------------------------------
// Generators: small pools of names and uuids so that pairs, shared VIFs and collisions are frequent.

const VIFS = ['V1', 'V2', 'V3'];
const VMS = ['M1', 'M2'];
const NETS = ['N1', 'N2', 'N3'];
const IF_NAMES = ['vif1.0', 'tap1.0', 'vif2.0', 'tap2.0', 'vif3.1', 'tap3.1', 'eth0', 'tap9.9'];
const BR_NAMES = ['xenbr0', 'xenbr1', 'xapi1', 'ovsbr'];
const JUNK = ['', 'junk', 'a\nb', 'x'.repeat(300), 'custom'];

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/** A map with some of `keys`, each from `values`, plus maybe a foreign key. */
function mapOf(keys: Record<string, readonly string[]>): fc.Arbitrary<ReadonlyMap<string, string>> {
  const entries = Object.entries(keys).map(([k, values]) => optional(fc.constantFrom(...values)).map((v) => [k, v] as const));
  return fc.tuple(fc.tuple(...entries), optional(fc.constantFrom('f1', 'f2'))).map(([pairs, foreign]) => {
    const m = new Map<string, string>();
    for (const [k, v] of pairs) if (v !== undefined) m.set(k, v);
    if (foreign !== undefined) m.set('foreign', foreign);
    return m;
  });
}

const ifaceExt = mapOf({
  'attached-mac': ['00:16:3e:00:00:01', '00:16:3e:00:00:02'],
  'xs-network-uuid': NETS,
  'xs-vif-uuid': [...VIFS, ''],
  'xs-vm-uuid': VMS,
  'iface-id': [...VIFS, 'custom', 'stale'],
  'vm-id': [...VMS, 'stale'],
  'iface-status': ['active', 'inactive', 'bogus'],
  'neutron-port-uuid': ['port-1', 'custom-iface', 'stale'],
});

const bridgeExt = mapOf({
  'xs-network-uuids': ['N1', 'N2', 'N1;N2', 'N2;N3', ';N3;', ''],
  'bridge-id': [...NETS, 'stale'],
});
const bridgeOther = mapOf({ 'disable-in-band': ['true', 'false', 'maybe'] });

function stateOf<T>(value: fc.Arbitrary<T>): fc.Arbitrary<XapiObjectState<T>> {
  return fc.oneof(
    { weight: 3, arbitrary: value.map((v) => ({ state: 'known' as const, value: v })) },
    fc.constant({ state: 'absent' as const }),
    fc.constant({ state: 'pending' as const }),
    fc.constant({ state: 'unknown' as const }),
  );
}

const netOther = mapOf({
  'nicira-bridge-id': ['custom-br', ...JUNK],
  'vswitch-controller-fail-mode': ['standalone', 'secure', 'open', ''],
  'vswitch-disable-in-band': ['true', 'false', 'maybe', ''],
});

interface World {
  readonly root: OpenVSwitchRow | undefined;
  readonly bridges: readonly BridgeRow[];
  readonly interfaces: readonly InterfaceRow[];
  readonly xapi: XapiData;
  readonly facts: SystemFacts;
}

interface XapiData {
  host: XapiObjectState<XapiHost>;
  pool: XapiObjectState<XapiPool>;
  networks: Map<string, XapiObjectState<XapiNetwork>>;
  vifs: Map<string, XapiObjectState<XapiVif>>;
  vms: Map<string, XapiObjectState<XapiVm>>;
}

const vifOther = mapOf({ 'nicira-iface-id': ['custom-iface', ...JUNK], 'neutron-port-uuid': ['port-1', ...JUNK] });

const hostArb = stateOf(
  fc.record({
    uuid: fc.constantFrom('H1', 'bad\u0000host'),
    softwareVersion: mapOf({ product_brand: ['XenServer', ''], product_version: ['8.4.0'], build_number: ['1', 'b\nad'] }),
  }),
);
const poolArb = stateOf(fc.record({ otherConfig: mapOf({ 'vswitch-controller-fail-mode': ['standalone', 'secure', 'x'] }) }));

const xapiArb: fc.Arbitrary<XapiData> = fc
  .record({
    host: hostArb,
    pool: poolArb,
    networks: fc.tuple(...BR_NAMES.map(() => stateOf(fc.record({ uuid: fc.constantFrom(...NETS), otherConfig: netOther })))),
    vifs: fc.tuple(...VIFS.map(() => stateOf(vifOther))),
    vms: fc.tuple(...VMS.map(() => stateOf(mapOf({ 'nicira-vm-id': ['custom-vm', ...JUNK] })))),
  })
  .map((r) => ({
    host: r.host,
    pool: r.pool,
    networks: new Map(BR_NAMES.map((name, i) => [name, r.networks[i]!])),
    vifs: new Map(VIFS.map((uuid, i) => [uuid, withUuid(r.vifs[i]!, uuid)])),
    vms: new Map(VMS.map((uuid, i) => [uuid, withUuid(r.vms[i]!, uuid)])),
  }));

function withUuid(
  state: XapiObjectState<ReadonlyMap<string, string>>,
  uuid: string,
): XapiObjectState<{ uuid: string; otherConfig: ReadonlyMap<string, string> }> {
  return state.state === 'known' ? { state: 'known', value: { uuid, otherConfig: state.value } } : state;
}

let rowCounter = 0;
const interfaceArb = (name: string) => ifaceExt.map((externalIds): InterfaceRow => ({ uuid: `i-${name}-${rowCounter++}`, name, externalIds }));

const worldArb: fc.Arbitrary<World> = fc.record({
  root: optional(
    fc.record({
      uuid: fc.constant(ROOT_UUID),
      externalIds: mapOf({ 'system-id': ['H1', 'S'], 'xs-system-uuid': ['H1', 'I1'] }),
      otherConfig: mapOf({ 'enable-statistics': ['true', 'false'] }),
      systemType: optional(fc.constantFrom('XenServer', 'Other')),
      systemVersion: optional(fc.constantFrom('8.4.0-1', 'old')),
    }),
  ),
  bridges: fc.subarray(BR_NAMES).chain((names) =>
    fc.tuple(
      ...names.map((name, i) =>
        fc
          .record({ externalIds: bridgeExt, otherConfig: bridgeOther, failMode: optional(fc.constantFrom('standalone', 'secure')) })
          .map((r): BridgeRow => ({ uuid: `b-${i}-${name}`, name, ...r })),
      ),
    ),
  ),
  interfaces: fc.subarray(IF_NAMES).chain((names) => fc.tuple(...names.map(interfaceArb))),
  xapi: xapiArb,
  facts: fc.record({
    inventory: fc.record({
      installationUuid: optional(fc.constantFrom('I1', '\u202e')),
      productBrand: optional(fc.constant('XCP-ng')),
      productVersion: optional(fc.constant('8.3.0')),
      buildNumber: optional(fc.constant('7')),
    }),
    systemId: optional(fc.constantFrom('S', '')),
    enableStatistics: fc.boolean(),
    // Config `managedKeys`: absent (every key) or a random subset; `neutronPortUuid` absent, on or off.
    managedKeys: optional(fc.subarray([...MANAGED_KEYS]).map((keys) => new Set<ManagedKey>(keys))),
    neutronPortUuid: optional(fc.boolean()),
  }),
});

function viewOf(world: Pick<World, 'root' | 'bridges' | 'interfaces'>): OvsdbView {
  return {
    root: world.root,
    bridges: new Map(world.bridges.map((b) => [b.uuid, b])),
    interfaces: new Map(world.interfaces.map((i) => [i.uuid, i])),
    interfaceByName: new Map(world.interfaces.map((i) => [i.name, i.uuid])),
  };
}

function xapiOf(data: XapiData): XapiView {
  const absent = { state: 'absent' } as const;
  return {
    host: () => data.host,
    pool: () => data.pool,
    networkByBridge: (name) => data.networks.get(name) ?? absent,
    vif: (uuid) => data.vifs.get(uuid) ?? absent,
    vm: (uuid) => data.vms.get(uuid) ?? absent,
  };
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const NUM_RUNS = 300;

describe('reconcile properties', () => {
  it('idempotence: applying the ChangeSet and recomputing gives an empty ChangeSet', () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const xapi = xapiOf(w.xapi);
        const view = viewOf(w);
        const first = reconcileAll(view, xapi, w.facts);
        const second = reconcileAll(applyChangeSet(view, first.changes), xapi, w.facts);
        expect(second.changes).toEqual([]);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a ChangeSet names only owned keys and columns; copied keys only on taps with a vif; no empty entries', () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const view = viewOf(w);
        const { changes } = reconcileAll(view, xapiOf(w.xapi), w.facts);
        for (const change of changes) {
          expect(Object.keys(OWNED)).toContain(change.table);
          expect(change.maps.length + change.scalars.length).toBeGreaterThan(0);
          for (const m of change.maps) {
            expect(m.set.length + m.remove.length).toBeGreaterThan(0);
            for (const key of [...m.set.map((e) => e.key), ...m.remove]) {
              expect(ownsMapKey(change.table, m.column, key), `${change.table} ${m.column}:${key}`).toBe(true);
              if ((COPIED_TAP_KEYS as readonly string[]).includes(key)) {
                const { role, partner } = interfaceRole(change.name ?? '');
                expect(role).toBe('tap');
                expect(view.interfaceByName.has(partner!)).toBe(true);
              }
            }
            for (const e of m.set) expect(e.value).not.toBe(e.previous);
          }
          for (const s of change.scalars) expect(ownsScalar(change.table, s.column)).toBe(true);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('keys and columns the config does not manage are never touched; neutron-port-uuid only on vif rows', () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const { changes } = reconcileAll(viewOf(w), xapiOf(w.xapi), w.facts);
        for (const change of changes) {
          const names = [...change.maps.flatMap((m) => [...m.set.map((e) => e.key), ...m.remove]), ...change.scalars.map((s) => s.column)];
          for (const name of names) {
            expect(manages(w.facts, name as ManagedKey), `${change.table} ${name} is not managed`).toBe(true);
            if (name === 'neutron-port-uuid') expect(interfaceRole(change.name ?? '').role).toBe('vif');
          }
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('the result does not depend on row iteration order', () => {
    fc.assert(
      fc.property(worldArb, fc.integer(), (w, seed) => {
        const xapi = xapiOf(w.xapi);
        const a = reconcileAll(viewOf(w), xapi, w.facts);
        const b = reconcileAll(
          viewOf({ root: w.root, bridges: shuffled(w.bridges, seed), interfaces: shuffled(w.interfaces, seed + 1) }),
          xapi,
          w.facts,
        );
        expect(b).toEqual(a);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  type Mutation =
    | { kind: 'upsertInterface'; name: string; ext: ReadonlyMap<string, string>; fresh: boolean }
    | { kind: 'deleteInterface'; pick: number }
    | { kind: 'bridge'; pick: number; ext: ReadonlyMap<string, string>; other: ReadonlyMap<string, string>; failMode: string | undefined }
    | { kind: 'deleteBridge'; pick: number }
    | { kind: 'root'; ext: ReadonlyMap<string, string> }
    | { kind: 'facts'; enableStatistics: boolean; systemId: string | undefined }
    | { kind: 'vif'; uuid: string; state: XapiObjectState<XapiVif> }
    | { kind: 'vm'; uuid: string; state: XapiObjectState<XapiVm> }
    | { kind: 'network'; bridge: string; state: XapiObjectState<XapiNetwork> }
    | { kind: 'pool'; state: XapiObjectState<XapiPool> }
    | { kind: 'host'; state: XapiObjectState<XapiHost> };

  const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('upsertInterface' as const), name: fc.constantFrom(...IF_NAMES), ext: ifaceExt, fresh: fc.boolean() }),
    fc.record({ kind: fc.constant('deleteInterface' as const), pick: fc.nat() }),
    fc.record({
      kind: fc.constant('bridge' as const),
      pick: fc.nat(),
      ext: bridgeExt,
      other: bridgeOther,
      failMode: optional(fc.constantFrom('standalone', 'secure')),
    }),
    fc.record({ kind: fc.constant('deleteBridge' as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant('root' as const), ext: mapOf({ 'system-id': ['H1', 'X'], 'xs-system-uuid': ['H1'] }) }),
    fc.record({ kind: fc.constant('facts' as const), enableStatistics: fc.boolean(), systemId: optional(fc.constantFrom('S', 'T')) }),
    fc.record({
      kind: fc.constant('vif' as const),
      uuid: fc.constantFrom(...VIFS),
      state: stateOf(mapOf({ 'nicira-iface-id': ['custom-iface', 'other', ...JUNK], 'neutron-port-uuid': ['port-1', 'port-2', ''] })),
    }).map((m) => ({ ...m, state: withUuid(m.state, m.uuid) })),
    fc.record({
      kind: fc.constant('vm' as const),
      uuid: fc.constantFrom(...VMS),
      state: stateOf(mapOf({ 'nicira-vm-id': ['custom-vm', 'other', ...JUNK] })),
    }).map((m) => ({ ...m, state: withUuid(m.state, m.uuid) })),
    fc.record({
      kind: fc.constant('network' as const),
      bridge: fc.constantFrom(...BR_NAMES),
      state: stateOf(fc.record({ uuid: fc.constantFrom(...NETS), otherConfig: netOther })),
    }),
    fc.record({ kind: fc.constant('pool' as const), state: poolArb }),
    fc.record({ kind: fc.constant('host' as const), state: hostArb }),
  );

  it('the incremental result equals the full one after random mutations', () => {
    fc.assert(
      fc.property(worldArb, fc.array(mutationArb, { minLength: 1, maxLength: 6 }), (w, mutations) => {
        // Start from a converged database, as the loop does after its first full pass.
        const xapiData: XapiData = { ...w.xapi, networks: new Map(w.xapi.networks), vifs: new Map(w.xapi.vifs), vms: new Map(w.xapi.vms) };
        const xapi = xapiOf(xapiData);
        let facts = w.facts;
        const start = viewOf(w);
        const converged = applyChangeSet(start, reconcileAll(start, xapi, facts).changes);
        const root = { current: converged.root };
        const bridges = new Map(converged.bridges);
        const interfaces = new Map(converged.interfaces);
        const byName = new Map(converged.interfaceByName);
        const tracker = new DirtyTracker(DependencyIndex.fromView(converged));

        for (const m of mutations) {
          switch (m.kind) {
            case 'upsertInterface': {
              const existing = byName.get(m.name);
              if (existing !== undefined && m.fresh) {
                interfaces.delete(existing);
                byName.delete(m.name);
                tracker.interfaceChanged(existing, undefined);
              }
              const uuid = existing !== undefined && !m.fresh ? existing : `i-${m.name}-${rowCounter++}`;
              const row: InterfaceRow = { uuid, name: m.name, externalIds: m.ext };
              interfaces.set(uuid, row);
              byName.set(m.name, uuid);
              tracker.interfaceChanged(uuid, row);
              break;
            }
            case 'deleteInterface': {
              const rows = [...interfaces.values()];
              const row = rows[m.pick % Math.max(rows.length, 1)];
              if (row === undefined) break;
              interfaces.delete(row.uuid);
              byName.delete(row.name);
              tracker.interfaceChanged(row.uuid, undefined);
              break;
            }
            case 'bridge': {
              const rows = [...bridges.values()];
              const old = rows[m.pick % Math.max(rows.length, 1)];
              if (old === undefined) break;
              const row: BridgeRow = { ...old, externalIds: m.ext, otherConfig: m.other, failMode: m.failMode };
              bridges.set(row.uuid, row);
              tracker.bridgeChanged(row.uuid, row);
              break;
            }
            case 'deleteBridge': {
              const rows = [...bridges.values()];
              const old = rows[m.pick % Math.max(rows.length, 1)];
              if (old === undefined) break;
              bridges.delete(old.uuid);
              tracker.bridgeChanged(old.uuid, undefined);
              break;
            }
            case 'root':
              if (root.current !== undefined) root.current = { ...root.current, externalIds: m.ext };
              tracker.rootChanged();
              break;
            case 'facts':
              facts = { ...facts, enableStatistics: m.enableStatistics, systemId: m.systemId };
              tracker.rootChanged();
              break;
            case 'vif':
              xapiData.vifs.set(m.uuid, m.state);
              tracker.vifChanged(m.uuid);
              break;
            case 'vm':
              xapiData.vms.set(m.uuid, m.state);
              tracker.vmChanged(m.uuid);
              break;
            case 'network': {
              const old = xapiData.networks.get(m.bridge);
              xapiData.networks.set(m.bridge, m.state);
              if (old?.state === 'known') tracker.networkChanged({ uuid: old.value.uuid });
              tracker.networkChanged({ bridge: m.bridge, ...(m.state.state === 'known' ? { uuid: m.state.value.uuid } : {}) });
              break;
            }
            case 'pool':
              xapiData.pool = m.state;
              tracker.poolChanged();
              break;
            case 'host':
              xapiData.host = m.state;
              tracker.hostChanged();
              break;
          }
        }

        const view: OvsdbView = { root: root.current, bridges, interfaces, interfaceByName: byName };
        const full = reconcileAll(view, xapi, facts);
        const incremental: ReconcileResult = reconcileDirty(view, xapi, facts, tracker.take(), tracker.index);
        expect(incremental.changes).toEqual(full.changes);
        // Findings of rows outside the dirty set are not repeated, but none may be invented.
        for (const warning of incremental.warnings) expect(full.warnings).toContainEqual(warning);
        for (const p of incremental.pending) expect(full.pending).toContainEqual(p);
        for (const u of incremental.unknown) expect(full.unknown).toContainEqual(u);
        // The incrementally maintained index answers like one built from scratch.
        const rebuilt = DependencyIndex.fromView(view);
        for (const vif of VIFS) expect([...tracker.index.interfacesWithVif(vif)].sort()).toEqual([...rebuilt.interfacesWithVif(vif)].sort());
        for (const vm of VMS) expect([...tracker.index.interfacesWithVm(vm)].sort()).toEqual([...rebuilt.interfacesWithVm(vm)].sort());
        for (const n of NETS) expect([...tracker.index.bridgesWithNetwork(n)].sort()).toEqual([...rebuilt.bridgesWithNetwork(n)].sort());
        for (const b of BR_NAMES) expect([...tracker.index.bridgesNamed(b)]).toEqual([...rebuilt.bridgesNamed(b)]);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
