import { MANAGED_KEYS } from '../../../src/reconcile/changeset.js';
import type { ChangeSet, ManagedKey, ReconcileResult, RowChange } from '../../../src/reconcile/changeset.js';
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

export const ROOT_UUID = '00000000-0000-4000-8000-000000000000';

export function map(record: Record<string, string> = {}): ReadonlyMap<string, string> {
  return new Map(Object.entries(record));
}

export function iface(uuid: string, name: string, ext: Record<string, string> = {}): InterfaceRow {
  return { uuid, name, externalIds: map(ext) };
}

export function bridge(
  uuid: string,
  name: string,
  ext: Record<string, string> = {},
  other: Record<string, string> = {},
  failMode?: string,
): BridgeRow {
  return { uuid, name, externalIds: map(ext), otherConfig: map(other), failMode };
}

export function root(
  ext: Record<string, string> = {},
  other: Record<string, string> = {},
  systemType?: string,
  systemVersion?: string,
): OpenVSwitchRow {
  return { uuid: ROOT_UUID, externalIds: map(ext), otherConfig: map(other), systemType, systemVersion };
}

export function ovsView(spec: {
  root?: OpenVSwitchRow | undefined;
  bridges?: readonly BridgeRow[];
  interfaces?: readonly InterfaceRow[];
}): OvsdbView {
  const interfaces = new Map<string, InterfaceRow>();
  const interfaceByName = new Map<string, string>();
  for (const row of spec.interfaces ?? []) {
    interfaces.set(row.uuid, row);
    interfaceByName.set(row.name, row.uuid);
  }
  const bridges = new Map<string, BridgeRow>();
  for (const row of spec.bridges ?? []) bridges.set(row.uuid, row);
  return { root: spec.root, bridges, interfaces, interfaceByName };
}

export const ABSENT = { state: 'absent' } as const;
export const PENDING = { state: 'pending' } as const;
export const UNKNOWN = { state: 'unknown' } as const;
export function known<T>(value: T): XapiObjectState<T> {
  return { state: 'known', value };
}

export type AnyState<T> = XapiObjectState<T>;

/** A table-driven XapiView; objects not listed are `absent` unless `fallback` says otherwise. */
export class FakeXapi implements XapiView {
  hostState: XapiObjectState<XapiHost> = ABSENT;
  poolState: XapiObjectState<XapiPool> = known({ otherConfig: map() });
  readonly networks = new Map<string, XapiObjectState<XapiNetwork>>();
  readonly vifs = new Map<string, XapiObjectState<XapiVif>>();
  readonly vms = new Map<string, XapiObjectState<XapiVm>>();
  fallback: XapiObjectState<never> = ABSENT;
  calls = 0;

  host(): XapiObjectState<XapiHost> {
    this.calls++;
    return this.hostState;
  }
  pool(): XapiObjectState<XapiPool> {
    this.calls++;
    return this.poolState;
  }
  networkByBridge(name: string): XapiObjectState<XapiNetwork> {
    this.calls++;
    return this.networks.get(name) ?? this.fallback;
  }
  vif(uuid: string): XapiObjectState<XapiVif> {
    this.calls++;
    return this.vifs.get(uuid) ?? this.fallback;
  }
  vm(uuid: string): XapiObjectState<XapiVm> {
    this.calls++;
    return this.vms.get(uuid) ?? this.fallback;
  }

  network(bridgeName: string, uuid: string, other: Record<string, string> = {}): this {
    this.networks.set(bridgeName, known({ uuid, otherConfig: map(other) }));
    return this;
  }
  vifRec(uuid: string, other: Record<string, string> = {}): this {
    this.vifs.set(uuid, known({ uuid, otherConfig: map(other) }));
    return this;
  }
  vmRec(uuid: string, other: Record<string, string> = {}): this {
    this.vms.set(uuid, known({ uuid, otherConfig: map(other) }));
    return this;
  }
}

export const NO_FACTS: SystemFacts = { inventory: {}, enableStatistics: false };

/** `facts` (default `NO_FACTS`) with config `managedKeys` = every owned key but `left`. */
export function managingAllBut(left: readonly ManagedKey[], facts: SystemFacts = NO_FACTS): SystemFacts {
  return { ...facts, managedKeys: new Set(MANAGED_KEYS.filter((k) => !left.includes(k))) };
}

/**
 * A change flattened for table-driven expectations: `column:key` → value (null = removed) and
 * `column` → value for scalars.
 */
export function flat(change: RowChange | undefined): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (change === undefined) return out;
  for (const m of change.maps) {
    for (const e of m.set) out[`${m.column}:${e.key}`] = e.value;
    for (const k of m.remove) out[`${m.column}:${k}`] = null;
  }
  for (const s of change.scalars) out[s.column] = s.value;
  return out;
}

export function changeFor(result: ReconcileResult, uuid: string): Record<string, string | null> {
  return flat(result.changes.find((c) => c.uuid === uuid));
}

function applyMap(current: ReadonlyMap<string, string>, change: RowChange, column: string): ReadonlyMap<string, string> {
  const m = change.maps.find((c) => c.column === column);
  if (m === undefined) return current;
  const next = new Map(current);
  // The OVSDB layer's mutate: delete the keys to set or remove, then insert the new pairs.
  for (const k of m.remove) next.delete(k);
  for (const e of m.set) next.delete(e.key);
  for (const e of m.set) next.set(e.key, e.value);
  return next;
}

function applyScalar(current: string | undefined, change: RowChange, column: string): string | undefined {
  const s = change.scalars.find((c) => c.column === column);
  if (s === undefined) return current;
  return s.value ?? undefined;
}

/** What the database holds after the ChangeSet's transaction (a pure test model of ovsdb/'s mutate). */
export function applyChangeSet(view: OvsdbView, changes: ChangeSet): OvsdbView {
  const interfaces = new Map(view.interfaces);
  const bridges = new Map(view.bridges);
  let rootRow = view.root;
  for (const change of changes) {
    switch (change.table) {
      case 'Interface': {
        const row = interfaces.get(change.uuid);
        if (row) interfaces.set(row.uuid, { ...row, externalIds: applyMap(row.externalIds, change, 'external_ids') });
        break;
      }
      case 'Bridge': {
        const row = bridges.get(change.uuid);
        if (row) {
          bridges.set(row.uuid, {
            ...row,
            externalIds: applyMap(row.externalIds, change, 'external_ids'),
            otherConfig: applyMap(row.otherConfig, change, 'other_config'),
            failMode: applyScalar(row.failMode, change, 'fail_mode'),
          });
        }
        break;
      }
      case 'Open_vSwitch':
        if (rootRow?.uuid === change.uuid) {
          rootRow = {
            ...rootRow,
            externalIds: applyMap(rootRow.externalIds, change, 'external_ids'),
            otherConfig: applyMap(rootRow.otherConfig, change, 'other_config'),
            systemType: applyScalar(rootRow.systemType, change, 'system_type'),
            systemVersion: applyScalar(rootRow.systemVersion, change, 'system_version'),
          };
        }
        break;
    }
  }
  return { root: rootRow, bridges, interfaces, interfaceByName: view.interfaceByName };
}
