import type { ChangeSet } from '../reconcile/changeset.js';
import { comment, mutateMapKeys, updateColumns, type Operation } from './operations.js';

/**
 * Turns the reconciler's ChangeSet into the operations of ONE transaction (docs/design.md §2.4): each owned map
 * column becomes one `mutate` (delete of the keys that change, then insert of their new pairs, so every
 * other key stays exactly as found), each owned scalar column an `update` of that column only, every
 * row addressed by `_uuid` (a row deleted meanwhile matches nothing). A `comment` names the daemon so
 * `ovsdb-tool show-log` tells who wrote what (docs/ovsdb.md §3 "comment"). An empty ChangeSet
 * gives no operations: the caller sends nothing.
 */
export function changeSetOperations(changes: ChangeSet, commentText: string): Operation[] {
  const ops: Operation[] = [];
  for (const row of changes) {
    for (const mapChange of row.maps) {
      const setPairs = new Map<string, string>();
      for (const entry of mapChange.set) setPairs.set(entry.key, entry.value);
      ops.push(mutateMapKeys(row.table, row.uuid, mapChange.column, setPairs, mapChange.remove));
    }
    if (row.scalars.length > 0) {
      const columns: Record<string, string | undefined> = {};
      for (const scalar of row.scalars) columns[scalar.column] = scalar.value ?? undefined;
      ops.push(updateColumns(row.table, row.uuid, columns));
    }
  }
  if (ops.length > 0) ops.push(comment(commentText));
  return ops;
}

/**
 * The ChangeSet as transactions of at most `rowsPerTransaction` rows each, in ChangeSet order: every
 * operation of a row stays in the transaction of that row, and each transaction carries the
 * `comment`. A large change set (the cold start, a resync) is written as pipelined chunks because
 * ovsdb-server commits and publishes them sooner, with less CPU, than one transaction (docs/ovsdb.md §7).
 * `rowsPerTransaction` of 0, a negative or a non-finite number means no limit (one transaction).
 * An empty ChangeSet gives no transaction.
 */
export function changeSetTransactions(changes: ChangeSet, commentText: string, rowsPerTransaction: number): Operation[][] {
  if (changes.length === 0) return [];
  const size = Number.isFinite(rowsPerTransaction) && rowsPerTransaction >= 1 ? Math.floor(rowsPerTransaction) : changes.length;
  const transactions: Operation[][] = [];
  for (let start = 0; start < changes.length; start += size) {
    const ops = changeSetOperations(changes.slice(start, start + size), commentText);
    if (ops.length > 0) transactions.push(ops);
  }
  return transactions;
}
