import type { ReplicaChange, ReplicaRow } from '../ovsdb/replica.js';
import type { DirtyTracker } from '../reconcile/dirty-tracker.js';
import type { BridgeRow, InterfaceRow, OpenVSwitchRow, OvsdbView, StringMap, Uuid } from '../reconcile/views.js';

const EMPTY_MAP: StringMap = new Map();

function mapColumn(row: ReplicaRow, column: string): StringMap {
  const value = row[column];
  return value instanceof Map ? (value as StringMap) : EMPTY_MAP;
}

function stringColumn(row: ReplicaRow, column: string): string {
  const value = row[column];
  return typeof value === 'string' ? value : '';
}

function optionalColumn(row: ReplicaRow, column: string): string | undefined {
  const value = row[column];
  return typeof value === 'string' ? value : undefined;
}

export function toRootRow(row: ReplicaRow): OpenVSwitchRow {
  return {
    uuid: row._uuid,
    externalIds: mapColumn(row, 'external_ids'),
    otherConfig: mapColumn(row, 'other_config'),
    systemType: optionalColumn(row, 'system_type'),
    systemVersion: optionalColumn(row, 'system_version'),
  };
}

export function toBridgeRow(row: ReplicaRow): BridgeRow {
  return {
    uuid: row._uuid,
    name: stringColumn(row, 'name'),
    externalIds: mapColumn(row, 'external_ids'),
    otherConfig: mapColumn(row, 'other_config'),
    failMode: optionalColumn(row, 'fail_mode'),
  };
}

export function toInterfaceRow(row: ReplicaRow): InterfaceRow {
  return { uuid: row._uuid, name: stringColumn(row, 'name'), externalIds: mapColumn(row, 'external_ids') };
}

/**
 * The reconciler's `OvsdbView`, kept in step with the OVSDB replica one change at a time (O(changed
 * rows), never a copy of the tables), and feeding the same changes to the `DirtyTracker` so the next
 * pass covers exactly the rows that depend on them.
 *
 * `ready` mirrors the replica's: the view is consulted only after the initial monitor reply of the
 * current connection was applied (docs/design.md §4.6).
 */
export class ReplicaOvsdbView implements OvsdbView {
  root: OpenVSwitchRow | undefined;
  readonly bridges = new Map<Uuid, BridgeRow>();
  readonly interfaces = new Map<Uuid, InterfaceRow>();
  readonly interfaceByName = new Map<string, Uuid>();
  private readonly tracker: DirtyTracker;

  constructor(tracker: DirtyTracker) {
    this.tracker = tracker;
  }

  /**
   * Applies one replica change to the view, the dependency index and the dirty set. `ownWrite` says
   * whether an Interface row's modification is exactly the daemon's own write (the echo of a pass):
   * such a row is not marked dirty again.
   */
  apply(change: ReplicaChange, ownWrite?: (uuid: Uuid, old: ReplicaRow, row: ReplicaRow) => boolean): void {
    for (const [table, rows] of change.tables) {
      for (const [uuid, rowChange] of rows) {
        const row = rowChange.kind === 'deleted' ? undefined : rowChange.row;
        if (table === 'Interface') {
          this.applyInterface(uuid, row, rowChange.kind === 'modified' && ownWrite?.(uuid, rowChange.old, rowChange.row) === true);
        } else if (table === 'Bridge') {
          this.applyBridge(uuid, row);
        } else if (table === 'Open_vSwitch') {
          this.applyRoot(uuid, row);
        }
      }
    }
    if (change.resync) this.tracker.markAll();
  }

  private applyInterface(uuid: Uuid, row: ReplicaRow | undefined, rewritten = false): void {
    const old = this.interfaces.get(uuid);
    if (old !== undefined && this.interfaceByName.get(old.name) === uuid) this.interfaceByName.delete(old.name);
    if (row === undefined) {
      this.interfaces.delete(uuid);
      this.tracker.interfaceChanged(uuid, undefined);
      return;
    }
    const next = toInterfaceRow(row);
    this.interfaces.set(uuid, next);
    this.interfaceByName.set(next.name, uuid);
    if (rewritten) this.tracker.interfaceRewritten(uuid, next);
    else this.tracker.interfaceChanged(uuid, next);
  }

  private applyBridge(uuid: Uuid, row: ReplicaRow | undefined): void {
    if (row === undefined) {
      this.bridges.delete(uuid);
      this.tracker.bridgeChanged(uuid, undefined);
      return;
    }
    const next = toBridgeRow(row);
    this.bridges.set(uuid, next);
    this.tracker.bridgeChanged(uuid, next);
  }

  private applyRoot(uuid: Uuid, row: ReplicaRow | undefined): void {
    if (row === undefined) {
      if (this.root?.uuid === uuid) this.root = undefined;
    } else {
      this.root = toRootRow(row);
    }
    this.tracker.rootChanged();
  }
}
