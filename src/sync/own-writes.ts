import type { ReplicaRow } from '../ovsdb/replica.js';
import type { ChangeSet, RowChange } from '../reconcile/changeset.js';
import type { Uuid } from '../reconcile/views.js';

/**
 * The Interface rows a pass is writing, so that the echo of that write (the update ovsdb-server sends
 * this session for its own commit, always before the commit's reply: docs/ovsdb.md §1) does not make
 * each of them dirty again. At cold start that echo covers every row, and re-evaluating them all found
 * nothing to do. A modification is the echo only when it is exactly the write: every key the write set
 * holds its value, every key it removed is gone, and every other key and column is as before. Anything
 * else (another writer's change, coalesced or not) is an ordinary change and marks the row dirty.
 * Each expected row matches once; the next pass `take()`s the rest and reconciles them again.
 */
export class OwnWrites {
  private readonly expected = new Map<Uuid, RowChange>();

  expect(changes: ChangeSet): void {
    for (const change of changes) if (change.table === 'Interface') this.expected.set(change.uuid, change);
  }

  /** The rows whose echo has not come; forgets them. */
  take(): Uuid[] {
    const left = [...this.expected.keys()];
    this.expected.clear();
    return left;
  }

  get size(): number {
    return this.expected.size;
  }

  /** True (once) when `old` → `row` is exactly the expected write of that row. */
  matches(uuid: Uuid, old: ReplicaRow, row: ReplicaRow): boolean {
    const change = this.expected.get(uuid);
    if (change === undefined || !isExactly(change, old, row)) return false;
    this.expected.delete(uuid);
    return true;
  }
}

/** Allocation-free: at cold start this runs once per echoed row. */
function isExactly(change: RowChange, old: ReplicaRow, row: ReplicaRow): boolean {
  if (change.scalars.length > 0) return false;
  for (const column in row) {
    if (old[column] === row[column]) continue;
    const m = change.maps.find((c) => c.column === column);
    if (m === undefined) return false;
    const before = old[column];
    const after = row[column];
    if (!(before instanceof Map) || !(after instanceof Map)) return false;
    if (!mapIsExactly(m, before as ReadonlyMap<string, string>, after as ReadonlyMap<string, string>)) return false;
  }
  return true;
}

/** `after` is `before` with `m`'s keys set and removed, and nothing else: same size, same other pairs. */
function mapIsExactly(m: RowChange['maps'][number], before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): boolean {
  let size = before.size;
  for (const entry of m.set) {
    if (after.get(entry.key) !== entry.value) return false;
    if (!before.has(entry.key)) size++;
  }
  for (const key of m.remove) {
    if (after.has(key)) return false;
    if (before.has(key) && !m.set.some((e) => e.key === key)) size--;
  }
  if (after.size !== size) return false;
  for (const [key, value] of before) {
    if (m.set.some((e) => e.key === key) || m.remove.includes(key)) continue;
    if (after.get(key) !== value) return false;
  }
  return true;
}
