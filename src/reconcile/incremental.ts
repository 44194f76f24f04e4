import type { ReconcileResult, RowChange } from './changeset.js';
import { diffRow, sortChanges, sortUnresolved, sortWarnings } from './diff.js';
import { bridgeIntent, Findings, interfaceIntent, interfaceNamed, interfaceRole, networkUuidsOf, rootIntent } from './rules.js';
import type { RowIntent } from './rules.js';
import type { BridgeRow, InterfaceRow, OvsdbView, SystemFacts, Uuid, XapiView } from './views.js';

/**
 * Which rows a pass covers, and the one place that turns rows into a `ReconcileResult`. Both entry
 * points are pure and synchronous; the result lists are sorted, so they do not depend on the order in
 * which the views' Maps iterate.
 */
function evaluate(
  ovs: OvsdbView,
  xapi: XapiView,
  facts: SystemFacts,
  includeRoot: boolean,
  bridges: Iterable<BridgeRow>,
  interfaces: Iterable<InterfaceRow>,
): ReconcileResult {
  const findings = new Findings();
  const changes: RowChange[] = [];
  const add = (intent: RowIntent): void => {
    const change = diffRow(intent);
    if (change !== undefined) changes.push(change);
  };
  if (includeRoot && ovs.root !== undefined) add(rootIntent(ovs.root, xapi, facts, findings));
  for (const bridge of bridges) add(bridgeIntent(bridge, xapi, facts, findings));
  for (const iface of interfaces) add(interfaceIntent(iface, ovs, xapi, facts, findings));
  return {
    changes: sortChanges(changes),
    warnings: sortWarnings(findings.warnings),
    pending: sortUnresolved(findings.pending),
    unknown: sortUnresolved(findings.unknown),
  };
}

/** Every row: the start-up pass, the periodic resync and `flush-cache`. */
export function reconcileAll(ovs: OvsdbView, xapi: XapiView, facts: SystemFacts): ReconcileResult {
  return evaluate(ovs, xapi, facts, true, ovs.bridges.values(), ovs.interfaces.values());
}

/**
 * What changed since the last pass. Each list names things, not rows to reconcile; `reconcileDirty`
 * expands them into the rows that depend on them. An adapter fills it from the OVSDB replica's change
 * signal and the XAPI watcher's events (or uses `DirtyTracker`, which also maintains the index).
 */
export interface DirtySet {
  /** Everything (reconnect, resync timer, flush-cache): same as `reconcileAll`. */
  readonly all?: boolean;
  /** The Open_vSwitch row changed, or the `SystemFacts` did (config reload, inventory). */
  readonly root?: boolean;
  /** This host's XAPI record changed (uuid, software_version) or its lookup state did. */
  readonly host?: boolean;
  /** The pool's other_config changed: every bridge (bridges are few; interfaces are not walked). */
  readonly pool?: boolean;
  /** Interface rows inserted, modified or deleted (row uuids). */
  readonly interfaces?: Iterable<Uuid>;
  /**
   * Names of Interface rows inserted or deleted. A deleted row is gone from the view, so only its name
   * can find its partner (a removed tap makes its vif active again).
   */
  readonly interfaceNames?: Iterable<string>;
  /** Bridge rows inserted or modified (row uuids). */
  readonly bridges?: Iterable<Uuid>;
  /** XAPI VIFs whose record or lookup state changed (VIF uuids). */
  readonly vifs?: Iterable<Uuid>;
  /** XAPI VMs whose record or lookup state changed (VM uuids). */
  readonly vms?: Iterable<Uuid>;
  /**
   * XAPI networks that changed, by network uuid: reaches the bridges whose `xs-network-uuids` lists it.
   * A network whose bridge does not list it is reached only through `networkBridges`, so adapters that
   * know the record's `bridge` field should pass it there (old and new value when it changed).
   */
  readonly networks?: Iterable<Uuid>;
  /** Bridge names whose XAPI network changed (the network record's `bridge` field). */
  readonly networkBridges?: Iterable<string>;
}

/**
 * Only the rows that depend on what `dirty` names: a changed row, its vif/tap partner, the rows whose
 * xs-vif-uuid / xs-vm-uuid name a changed VIF / VM (and their partners, whose copied keys may lag), the
 * bridges of a changed network, every bridge when the pool changed, the root when the host or facts did.
 *
 * Cost is proportional to the dirty rows: interfaces are reached through `index` and the views' Map
 * lookups, never by walking `ovs.interfaces`. `index` must already reflect every change in `ovs`
 * (update it from the same replica change signal, before the pass). Given that, the result's `changes`
 * equal those of `reconcileAll` whenever every row outside the dirty set was converged.
 */
export function reconcileDirty(
  ovs: OvsdbView,
  xapi: XapiView,
  facts: SystemFacts,
  dirty: DirtySet,
  index: DependencyIndex,
): ReconcileResult {
  if (dirty.all === true) return reconcileAll(ovs, xapi, facts);

  const ifaces = new Map<Uuid, InterfaceRow>();
  const addWithPartner = (row: InterfaceRow): void => {
    ifaces.set(row.uuid, row);
    const { partner } = interfaceRole(row.name);
    if (partner === undefined) return;
    const other = interfaceNamed(ovs, partner);
    if (other !== undefined) ifaces.set(other.uuid, other);
  };
  const addUuid = (uuid: Uuid): void => {
    if (ifaces.has(uuid)) return;
    const row = ovs.interfaces.get(uuid);
    if (row !== undefined) addWithPartner(row);
  };

  for (const uuid of dirty.interfaces ?? []) addUuid(uuid);
  for (const name of dirty.interfaceNames ?? []) {
    const row = interfaceNamed(ovs, name);
    if (row !== undefined) addWithPartner(row);
    const { partner } = interfaceRole(name);
    const other = partner === undefined ? undefined : interfaceNamed(ovs, partner);
    if (other !== undefined) addWithPartner(other);
  }
  for (const vif of dirty.vifs ?? []) for (const uuid of index.interfacesWithVif(vif)) addUuid(uuid);
  for (const vm of dirty.vms ?? []) for (const uuid of index.interfacesWithVm(vm)) addUuid(uuid);

  const bridges = new Map<Uuid, BridgeRow>();
  const addBridge = (uuid: Uuid): void => {
    const row = ovs.bridges.get(uuid);
    if (row !== undefined) bridges.set(uuid, row);
  };
  if (dirty.pool === true) for (const row of ovs.bridges.values()) bridges.set(row.uuid, row);
  for (const uuid of dirty.bridges ?? []) addBridge(uuid);
  for (const network of dirty.networks ?? []) for (const uuid of index.bridgesWithNetwork(network)) addBridge(uuid);
  for (const name of dirty.networkBridges ?? []) for (const uuid of index.bridgesNamed(name)) addBridge(uuid);

  const root = dirty.root === true || dirty.host === true;
  return evaluate(ovs, xapi, facts, root, bridges.values(), ifaces.values());
}

const EMPTY: ReadonlySet<Uuid> = new Set();

/** Adds `uuid` under `key`; true when `key` was not indexed before (a new referenced object). */
function addTo(index: Map<string, Set<Uuid>>, key: string | undefined, uuid: Uuid): boolean {
  if (key === undefined || key === '') return false;
  let set = index.get(key);
  const created = set === undefined;
  if (set === undefined) index.set(key, (set = new Set()));
  set.add(uuid);
  return created;
}

/** Removes `uuid` from `key`; true when no row references `key` any more. */
function removeFrom(index: Map<string, Set<Uuid>>, key: string | undefined, uuid: Uuid): boolean {
  if (key === undefined || key === '') return false;
  const set = index.get(key);
  if (set === undefined) return false;
  set.delete(uuid);
  if (set.size !== 0) return false;
  index.delete(key);
  return true;
}

/**
 * How the set of XAPI objects the database refers to changed since the last `takeInterestDelta()`:
 * what the XAPI watcher must start and stop following. O(changed rows), so a port plug at thousands
 * of rows does not hand the watcher every uuid again.
 */
export interface InterestDelta {
  readonly addVifs: ReadonlySet<Uuid>;
  readonly removeVifs: ReadonlySet<Uuid>;
  readonly addVms: ReadonlySet<Uuid>;
  readonly removeVms: ReadonlySet<Uuid>;
  /** Bridge names: the XAPI network of each is the one whose `bridge` field names it. */
  readonly addBridges: ReadonlySet<string>;
  readonly removeBridges: ReadonlySet<string>;
}

class InterestChanges {
  private add = new Set<Uuid>();
  private remove = new Set<Uuid>();

  note(key: string, present: boolean): void {
    if (present) {
      this.remove.delete(key);
      this.add.add(key);
    } else {
      this.add.delete(key);
      this.remove.add(key);
    }
  }

  take(): { add: Set<Uuid>; remove: Set<Uuid> } {
    const out = { add: this.add, remove: this.remove };
    this.add = new Set();
    this.remove = new Set();
    return out;
  }
}

interface IndexedInterface {
  readonly name: string;
  readonly vif: string | undefined;
  readonly vm: string | undefined;
}

interface IndexedBridge {
  readonly name: string;
  readonly networks: readonly string[];
}

/**
 * Reverse dependencies from XAPI objects to OVSDB rows, maintained incrementally from the replica's
 * change signal (O(1) per changed row): xs-vif-uuid → interfaces, xs-vm-uuid → interfaces, bridge name →
 * bridges, xs-network-uuids item → bridges. It indexes each row's own facts, as the replica holds them;
 * `reconcileDirty` adds partners itself, which covers a tap whose copied keys have not landed yet.
 *
 * Not thread-safe in any sense that matters here: call it from the same turn that updates the replica.
 */
export class DependencyIndex {
  private readonly interfaces = new Map<Uuid, IndexedInterface>();
  private readonly byVif = new Map<string, Set<Uuid>>();
  private readonly byVm = new Map<string, Set<Uuid>>();
  private readonly bridges = new Map<Uuid, IndexedBridge>();
  private readonly byBridgeName = new Map<string, Set<Uuid>>();
  private readonly byNetwork = new Map<string, Set<Uuid>>();
  private readonly vifInterest = new InterestChanges();
  private readonly vmInterest = new InterestChanges();
  private readonly bridgeInterest = new InterestChanges();

  /** An index of every row of `ovs` (start-up, or after a reconnect rebuilt the replica). */
  static fromView(ovs: OvsdbView): DependencyIndex {
    const index = new DependencyIndex();
    for (const [uuid, row] of ovs.interfaces) index.upsertInterface(uuid, row);
    for (const [uuid, row] of ovs.bridges) index.upsertBridge(uuid, row);
    return index;
  }

  /** Records an inserted or modified Interface row. */
  upsertInterface(uuid: Uuid, row: Pick<InterfaceRow, 'name' | 'externalIds'>): void {
    this.removeInterface(uuid);
    const entry: IndexedInterface = {
      name: row.name,
      vif: row.externalIds.get('xs-vif-uuid'),
      vm: row.externalIds.get('xs-vm-uuid'),
    };
    this.interfaces.set(uuid, entry);
    if (addTo(this.byVif, entry.vif, uuid) && entry.vif !== undefined) this.vifInterest.note(entry.vif, true);
    if (addTo(this.byVm, entry.vm, uuid) && entry.vm !== undefined) this.vmInterest.note(entry.vm, true);
  }

  /** Forgets a deleted Interface row; returns its name (for `DirtySet.interfaceNames`), if it was indexed. */
  removeInterface(uuid: Uuid): string | undefined {
    const old = this.interfaces.get(uuid);
    if (old === undefined) return undefined;
    this.interfaces.delete(uuid);
    if (removeFrom(this.byVif, old.vif, uuid) && old.vif !== undefined) this.vifInterest.note(old.vif, false);
    if (removeFrom(this.byVm, old.vm, uuid) && old.vm !== undefined) this.vmInterest.note(old.vm, false);
    return old.name;
  }

  /** Records an inserted or modified Bridge row. */
  upsertBridge(uuid: Uuid, row: BridgeRow): void {
    this.removeBridge(uuid);
    const entry: IndexedBridge = { name: row.name, networks: networkUuidsOf(row) };
    this.bridges.set(uuid, entry);
    if (addTo(this.byBridgeName, entry.name, uuid)) this.bridgeInterest.note(entry.name, true);
    for (const network of entry.networks) addTo(this.byNetwork, network, uuid);
  }

  /** Forgets a deleted Bridge row. */
  removeBridge(uuid: Uuid): void {
    const old = this.bridges.get(uuid);
    if (old === undefined) return;
    this.bridges.delete(uuid);
    if (removeFrom(this.byBridgeName, old.name, uuid)) this.bridgeInterest.note(old.name, false);
    for (const network of old.networks) removeFrom(this.byNetwork, network, uuid);
  }

  /** The indexed name of an Interface row. */
  interfaceName(uuid: Uuid): string | undefined {
    return this.interfaces.get(uuid)?.name;
  }

  interfacesWithVif(vifUuid: Uuid): ReadonlySet<Uuid> {
    return this.byVif.get(vifUuid) ?? EMPTY;
  }

  interfacesWithVm(vmUuid: Uuid): ReadonlySet<Uuid> {
    return this.byVm.get(vmUuid) ?? EMPTY;
  }

  /**
   * What changed in `vifUuids()` / `vmUuids()` / `bridgeNames()` since the previous call (a key
   * referenced again before the call is not reported as removed, and the other way round).
   */
  takeInterestDelta(): InterestDelta {
    const vifs = this.vifInterest.take();
    const vms = this.vmInterest.take();
    const bridges = this.bridgeInterest.take();
    return { addVifs: vifs.add, removeVifs: vifs.remove, addVms: vms.add, removeVms: vms.remove, addBridges: bridges.add, removeBridges: bridges.remove };
  }

  /** Every XAPI VIF uuid some Interface row names in `xs-vif-uuid`: what the XAPI watcher must follow. */
  vifUuids(): IterableIterator<Uuid> {
    return this.byVif.keys();
  }

  /** Every XAPI VM uuid some Interface row names in `xs-vm-uuid`. */
  vmUuids(): IterableIterator<Uuid> {
    return this.byVm.keys();
  }

  /** Every non-empty Bridge name: the XAPI networks (by `bridge` field) the watcher must follow. */
  bridgeNames(): IterableIterator<string> {
    return this.byBridgeName.keys();
  }

  bridgesNamed(name: string): ReadonlySet<Uuid> {
    return this.byBridgeName.get(name) ?? EMPTY;
  }

  bridgesWithNetwork(networkUuid: Uuid): ReadonlySet<Uuid> {
    return this.byNetwork.get(networkUuid) ?? EMPTY;
  }

  /** Sizes, for metrics and tests. */
  get size(): { readonly interfaces: number; readonly bridges: number } {
    return { interfaces: this.interfaces.size, bridges: this.bridges.size };
  }
}

/**
 * Accumulates a `DirtySet` between passes and keeps a `DependencyIndex` in step with the replica, so
 * the adapter makes one call per change: replica row changes (`row` undefined = deleted) and XAPI
 * events. `take()` hands the accumulated set to a pass and starts a new one; if the pass fails, give
 * the set back with `restore` (or `markAll`) so nothing is lost.
 */
export class DirtyTracker {
  readonly index: DependencyIndex;
  private all = false;
  private root = false;
  private host = false;
  private pool = false;
  private interfaces = new Set<Uuid>();
  private interfaceNames = new Set<string>();
  private bridges = new Set<Uuid>();
  private vifs = new Set<Uuid>();
  private vms = new Set<Uuid>();
  private networks = new Set<Uuid>();
  private networkBridges = new Set<string>();

  constructor(index: DependencyIndex = new DependencyIndex()) {
    this.index = index;
  }

  interfaceChanged(uuid: Uuid, row: InterfaceRow | undefined): void {
    const oldName = row === undefined ? this.index.removeInterface(uuid) : this.index.interfaceName(uuid);
    if (row !== undefined) {
      this.index.upsertInterface(uuid, row);
      if (oldName !== row.name) this.interfaceNames.add(row.name);
    }
    if (oldName !== undefined && oldName !== row?.name) this.interfaceNames.add(oldName);
    this.interfaces.add(uuid);
  }

  bridgeChanged(uuid: Uuid, row: BridgeRow | undefined): void {
    if (row === undefined) this.index.removeBridge(uuid);
    else this.index.upsertBridge(uuid, row);
    this.bridges.add(uuid);
  }

  /** The Open_vSwitch row or the `SystemFacts` changed. */
  rootChanged(): void {
    this.root = true;
  }

  hostChanged(): void {
    this.host = true;
  }

  poolChanged(): void {
    this.pool = true;
  }

  vifChanged(uuid: Uuid): void {
    this.vifs.add(uuid);
  }

  vmChanged(uuid: Uuid): void {
    this.vms.add(uuid);
  }

  /** A network changed; pass its `bridge` field (old and new, when it changed) whenever it is known. */
  networkChanged(change: { readonly uuid?: Uuid; readonly bridge?: string }): void {
    if (change.uuid !== undefined) this.networks.add(change.uuid);
    if (change.bridge !== undefined) this.networkBridges.add(change.bridge);
  }

  /** Reconnect, resync timer, flush-cache: the next pass covers every row. */
  markAll(): void {
    this.all = true;
  }

  /** True when nothing is dirty. */
  get isClean(): boolean {
    return (
      !this.all &&
      !this.root &&
      !this.host &&
      !this.pool &&
      this.interfaces.size === 0 &&
      this.interfaceNames.size === 0 &&
      this.bridges.size === 0 &&
      this.vifs.size === 0 &&
      this.vms.size === 0 &&
      this.networks.size === 0 &&
      this.networkBridges.size === 0
    );
  }

  /** The accumulated set; the tracker starts empty again. */
  take(): DirtySet {
    const set: DirtySet = {
      all: this.all,
      root: this.root,
      host: this.host,
      pool: this.pool,
      interfaces: this.interfaces,
      interfaceNames: this.interfaceNames,
      bridges: this.bridges,
      vifs: this.vifs,
      vms: this.vms,
      networks: this.networks,
      networkBridges: this.networkBridges,
    };
    this.all = this.root = this.host = this.pool = false;
    this.interfaces = new Set();
    this.interfaceNames = new Set();
    this.bridges = new Set();
    this.vifs = new Set();
    this.vms = new Set();
    this.networks = new Set();
    this.networkBridges = new Set();
    return set;
  }

  /** Merges a set taken earlier back in (its pass failed and will be retried). */
  restore(set: DirtySet): void {
    if (set.all === true) this.all = true;
    if (set.root === true) this.root = true;
    if (set.host === true) this.host = true;
    if (set.pool === true) this.pool = true;
    for (const u of set.interfaces ?? []) this.interfaces.add(u);
    for (const n of set.interfaceNames ?? []) this.interfaceNames.add(n);
    for (const u of set.bridges ?? []) this.bridges.add(u);
    for (const u of set.vifs ?? []) this.vifs.add(u);
    for (const u of set.vms ?? []) this.vms.add(u);
    for (const u of set.networks ?? []) this.networks.add(u);
    for (const n of set.networkBridges ?? []) this.networkBridges.add(n);
  }
}
