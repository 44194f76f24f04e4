import { transactionOutcome, type TransactionOutcome } from '../outcomes.js';
import type { ChangeSet, ReconcileResult } from '../reconcile/changeset.js';

/** How a pass ended, for logs, metrics and readiness. */
export type PassResult = 'converged' | 'changed' | 'failed' | 'dry_run' | 'not_ready';

export interface PassReport {
  readonly result: PassResult;
  readonly seconds: number;
  readonly rows: number;
  /** Owned key (or column) → number of rows where it was written. */
  readonly changesByKey: ReadonlyMap<string, number>;
  readonly pending: number;
  readonly unknown: number;
  /** Interface rows the pass took as changed (by uuid); undefined for a full pass. */
  readonly dirtyInterfaces?: number | undefined;
  readonly error?: unknown;
}

/** Owned key (or column) → number of rows where a change writes it. */
export function countKeys(changes: ChangeSet): Map<string, number> {
  const counts = new Map<string, number>();
  const bump = (key: string): void => {
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };
  for (const row of changes) {
    for (const m of row.maps) {
      for (const e of m.set) bump(e.key);
      for (const k of m.remove) bump(k);
    }
    for (const s of row.scalars) bump(s.column);
  }
  return counts;
}

/** `Interface vif1.0: iface-id=… vm-id=… -iface-status`, capped at `max` rows. */
export function describeChanges(changes: ChangeSet, max: number): string[] {
  const lines: string[] = [];
  for (const row of changes.slice(0, max)) {
    const parts: string[] = [];
    for (const m of row.maps) {
      const prefix = m.column === 'external_ids' ? '' : `${m.column}:`;
      for (const e of m.set) parts.push(`${prefix}${e.key}=${e.value}`);
      for (const k of m.remove) parts.push(`-${prefix}${k}`);
    }
    for (const s of row.scalars) parts.push(`${s.column}=${s.value ?? '[]'}`);
    lines.push(`${row.table} ${row.name ?? row.uuid}: ${parts.join(' ')}`);
  }
  if (changes.length > max) lines.push(`… and ${changes.length - max} more rows`);
  return lines;
}

/**
 * A row waiting on an XAPI lookup is written once, when the lookup resolves, rather than twice (its
 * other fields now, its ids a few milliseconds later): at cold start that halves the rows written.
 * Nothing is lost: a lookup always ends in a watcher change (known, absent, or unknown when XAPI
 * fails), which marks the row dirty again (docs/design.md §3 "pending").
 */
export function holdPendingRows(result: ReconcileResult): ReconcileResult {
  if (result.pending.length === 0) return result;
  const waiting = new Set(result.pending.map((row) => row.uuid));
  return { ...result, changes: result.changes.filter((change) => !waiting.has(change.uuid)) };
}

export function plural(rows: number): string {
  return rows === 1 ? 'row' : 'rows';
}

export function emptyResult(): ReconcileResult {
  return { changes: [], warnings: [], pending: [], unknown: [] };
}

/**
 * Reports every chunk's outcome and returns the first failure: a pass whose chunks did not all commit
 * fails as a whole and is retried (the chunks that did commit are idempotent owned-key writes, and the
 * next pass recomputes only what still differs).
 */
export function firstFailure(settled: readonly PromiseSettledResult<unknown>[], report: (outcome: TransactionOutcome) => void): { error: unknown } | undefined {
  let failure: { error: unknown } | undefined;
  for (const s of settled) {
    if (s.status === 'fulfilled') {
      report('committed');
    } else {
      report(transactionOutcome(s.reason));
      failure ??= { error: s.reason };
    }
  }
  return failure;
}
