import { CodedError } from '../errors.js';
import { ownsMapKey, ownsScalar } from './changeset.js';
import type {
  MapChange,
  MapColumn,
  MapEntry,
  OwnedTable,
  ReconcileWarning,
  RowChange,
  ScalarChange,
  ScalarColumn,
  UnresolvedRow,
} from './changeset.js';
import { dependencyKey } from './intent.js';
import type { RowIntent } from './intent.js';

/** Code-unit order: deterministic and locale-independent. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The minimal change that makes the row hold `intent`, or `undefined` when it already does. Throws
 * `RECONCILE_INVARIANT` if the intent names a key or column the daemon does not own (`OWNED`): that is a
 * bug in the rules, and writing it would touch someone else's data.
 */
export function diffRow(intent: RowIntent): RowChange | undefined {
  const maps: MapChange[] = [];
  for (const column of Object.keys(intent.maps).sort(compare) as MapColumn[]) {
    const wanted = intent.maps[column];
    if (wanted === undefined || wanted.size === 0) continue;
    const current = intent.current.maps[column];
    const set: MapEntry[] = [];
    const remove: string[] = [];
    for (const [key, value] of wanted) {
      if (!ownsMapKey(intent.table, column, key)) {
        throw new CodedError('RECONCILE_INVARIANT', `intent for ${intent.table} ${column}:${key}, which the daemon does not own`);
      }
      const previous = current?.get(key);
      if (value === null) {
        if (previous !== undefined) remove.push(key);
      } else if (previous !== value) {
        set.push({ key, value, previous });
      }
    }
    if (set.length === 0 && remove.length === 0) continue;
    set.sort((a, b) => compare(a.key, b.key));
    remove.sort(compare);
    maps.push({ column, set, remove });
  }

  const scalars: ScalarChange[] = [];
  for (const column of Object.keys(intent.scalars).sort(compare) as ScalarColumn[]) {
    const value = intent.scalars[column];
    if (value === undefined) continue;
    if (!ownsScalar(intent.table, column)) {
      throw new CodedError('RECONCILE_INVARIANT', `intent for ${intent.table} column ${column}, which the daemon does not own`);
    }
    const previous = intent.current.scalars[column];
    if ((previous ?? null) !== value) scalars.push({ column, value, previous });
  }

  if (maps.length === 0 && scalars.length === 0) return undefined;
  return { table: intent.table, uuid: intent.uuid, name: intent.name, maps, scalars };
}

function compareRows(a: { table: OwnedTable; uuid: string }, b: { table: OwnedTable; uuid: string }): number {
  return compare(a.table, b.table) || compare(a.uuid, b.uuid);
}

/** Sorts in place by table then uuid (the ChangeSet order); returns the array. */
export function sortChanges(changes: RowChange[]): RowChange[] {
  return changes.sort(compareRows);
}

/** Sorts in place by table, uuid, code, message. */
export function sortWarnings(warnings: ReconcileWarning[]): ReconcileWarning[] {
  return warnings.sort((a, b) => compareRows(a, b) || compare(a.code, b.code) || compare(a.message, b.message));
}

/** Sorts in place by table, uuid, dependency. */
export function sortUnresolved(rows: UnresolvedRow[]): UnresolvedRow[] {
  return rows.sort((a, b) => compareRows(a, b) || compare(dependencyKey(a.dependency), dependencyKey(b.dependency)));
}
