import type {
  ManagedKey,
  MapColumn,
  OwnedTable,
  ReconcileWarning,
  ReconcileWarningCode,
  ScalarColumn,
  UnresolvedRow,
  XapiDependency,
} from './changeset.js';
import { isSafeId, quoteForLog } from './validate.js';
import type { StringMap, SystemFacts, Uuid } from './views.js';

/*
 * What every rule module shares: the `RowIntent` a rule produces for one row, the `Findings` it reports
 * instead of logging, and the helpers that apply the config and check values from XAPI.
 */

/**
 * For each owned field of one row, the value the database must hold, `null` when the key must be
 * absent (or the optional scalar empty), or no entry at all when the field is to be left alone.
 */
export interface RowIntent {
  readonly table: OwnedTable;
  readonly uuid: Uuid;
  readonly name: string | undefined;
  /** The row's current maps and scalars, which the diff compares against. */
  readonly current: {
    readonly maps: Partial<Record<MapColumn, StringMap>>;
    readonly scalars: Partial<Record<ScalarColumn, string | undefined>>;
  };
  readonly maps: Partial<Record<MapColumn, Map<string, string | null>>>;
  readonly scalars: Partial<Record<ScalarColumn, string | null>>;
}

/** Warnings and unresolved dependencies found while computing intents (the pure core never logs). */
export class Findings {
  readonly warnings: ReconcileWarning[] = [];
  readonly pending: UnresolvedRow[] = [];
  readonly unknown: UnresolvedRow[] = [];

  warn(row: RowRef, code: ReconcileWarningCode, message: string): void {
    // Once per row: `iface-id` and `neutron-port-uuid` both read a bad `nicira-iface-id`.
    for (let i = this.warnings.length - 1; i >= 0; i--) {
      const w = this.warnings[i];
      if (w === undefined || w.uuid !== row.uuid || w.table !== row.table) break;
      if (w.code === code && w.message === message) return;
    }
    this.warnings.push({ code, table: row.table, uuid: row.uuid, name: row.name, message });
  }

  unresolved(row: RowRef, state: 'pending' | 'unknown', dependency: XapiDependency): void {
    const list = state === 'pending' ? this.pending : this.unknown;
    const key = dependencyKey(dependency);
    // One entry per (row, dependency), although several fields of a row may consult the same object.
    // Rows are evaluated one at a time, so a duplicate can only be among the row's own trailing entries.
    for (let i = list.length - 1; i >= 0; i--) {
      const u = list[i];
      if (u === undefined || u.uuid !== row.uuid || u.table !== row.table) break;
      if (dependencyKey(u.dependency) === key) return;
    }
    list.push({ table: row.table, uuid: row.uuid, name: row.name, dependency });
  }
}

export interface RowRef {
  readonly table: OwnedTable;
  readonly uuid: Uuid;
  readonly name: string | undefined;
}

/** A stable text form of a dependency, for sorting and de-duplication. */
export function dependencyKey(dep: XapiDependency): string {
  switch (dep.kind) {
    case 'vif':
    case 'vm':
      return `${dep.kind}:${dep.uuid}`;
    case 'network':
      return `network:${dep.bridge}`;
    case 'pool':
    case 'host':
      return dep.kind;
  }
}

export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * True when the config lets the daemon write and remove `key`: it is in `managedKeys` (absent = every
 * owned field) and, for `neutron-port-uuid`, `neutronPortUuid` is not false (docs/design.md §2 "Managed keys").
 */
export function manages(facts: SystemFacts, key: ManagedKey): boolean {
  if (key === 'neutron-port-uuid' && facts.neutronPortUuid === false) return false;
  return facts.managedKeys?.has(key) ?? true;
}

/** `config[key]` when non-empty and a safe id; an unsafe one is reported and treated as absent. */
export function safeOverride(config: StringMap, key: string, owner: string, ref: RowRef, findings: Findings): string | undefined {
  const value = nonEmpty(config.get(key));
  if (value === undefined || isSafeId(value)) return value;
  findings.warn(ref, 'OVERRIDE_INVALID', `${owner} other_config:${key} ${quoteForLog(value)} is not a safe id; ignored`);
  return undefined;
}
