import { DependencyIndex } from './dependency-index.js';
import type { DirtySet } from './row-selection.js';
import type { BridgeRow, InterfaceRow, Uuid } from './views.js';

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

  /**
   * An Interface row modified only by the daemon's own write, exactly as that write said: the index
   * follows, but the row is not dirty (the pass that wrote it computed it; anything else that changed
   * since marks it dirty on its own). `Interface.name` is immutable, so no name changes here.
   */
  interfaceRewritten(uuid: Uuid, row: InterfaceRow): void {
    this.index.upsertInterface(uuid, row);
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
