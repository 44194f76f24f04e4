import { networkUuidsOf } from './rules.js';
import type { BridgeRow, InterfaceRow, OvsdbView, Uuid } from './views.js';

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
