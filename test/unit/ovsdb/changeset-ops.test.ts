import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { changeSetOperations, changeSetTransactions } from '../../../src/ovsdb/changeset-ops.js';
import type { Operation } from '../../../src/ovsdb/operations.js';
import type { RowChange } from '../../../src/reconcile/changeset.js';

const COMMENT = 'ovs-xapi-sync: test';

/** An Interface row setting iface-id, or a Bridge row setting bridge-id and fail_mode (two operations). */
function row(i: number, kind: 'interface' | 'bridge' = 'interface'): RowChange {
  const uuid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  if (kind === 'bridge') {
    return {
      table: 'Bridge',
      uuid,
      name: `xenbr${i}`,
      maps: [{ column: 'external_ids', set: [{ key: 'bridge-id', value: `b${i}`, previous: undefined }], remove: [] }],
      scalars: [{ column: 'fail_mode', value: 'standalone', previous: undefined }],
    };
  }
  return {
    table: 'Interface',
    uuid,
    name: `vif${i}.0`,
    maps: [{ column: 'external_ids', set: [{ key: 'iface-id', value: `v${i}`, previous: undefined }], remove: ['iface-status'] }],
    scalars: [],
  };
}

/** The `_uuid` each non-comment operation addresses, in order. */
function addressed(ops: readonly Operation[]): string[] {
  return ops.flatMap((op) => ('where' in op ? [JSON.stringify(op.where[0]?.[2])] : []));
}

describe('changeSetTransactions: the pass written as pipelined chunks', () => {
  it.each([
    { rows: 0, per: 250, sizes: [] },
    { rows: 1, per: 250, sizes: [1] },
    { rows: 250, per: 250, sizes: [250] },
    { rows: 251, per: 250, sizes: [250, 1] },
    { rows: 6004, per: 250, sizes: [...Array<number>(24).fill(250), 4] },
    { rows: 7, per: 3, sizes: [3, 3, 1] },
    { rows: 7, per: 0, sizes: [7] },
    { rows: 7, per: -1, sizes: [7] },
    { rows: 7, per: Number.POSITIVE_INFINITY, sizes: [7] },
    { rows: 7, per: Number.NaN, sizes: [7] },
    { rows: 7, per: 2.9, sizes: [2, 2, 2, 1] },
  ])('$rows rows at $per per transaction → transactions of $sizes rows', ({ rows, per, sizes }) => {
    const changes = Array.from({ length: rows }, (_, i) => row(i));
    const txns = changeSetTransactions(changes, COMMENT, per);
    // One mutate per Interface row here, plus the comment.
    expect(txns.map((ops) => ops.length - 1)).toEqual(sizes);
    for (const ops of txns) expect(ops.at(-1)).toEqual({ op: 'comment', comment: COMMENT });
  });

  it('is the one-transaction form cut at row boundaries: same operations, same order, each chunk commented', () => {
    const kinds = fc.constantFrom('interface' as const, 'bridge' as const);
    const changesArb = fc.uniqueArray(fc.tuple(fc.nat(10_000), kinds), { maxLength: 60, selector: ([i]) => i }).map((rows) => rows.map(([i, kind]) => row(i, kind)));
    fc.assert(
      fc.property(changesArb, fc.integer({ min: 1, max: 70 }), (changes, per) => {
        const txns = changeSetTransactions(changes, COMMENT, per);
        const whole = changeSetOperations(changes, COMMENT);
        // Concatenated without their comments, the chunks are exactly the single transaction's operations.
        const joined = txns.flatMap((ops) => ops.slice(0, -1));
        expect([...joined, ...(whole.length > 0 ? [whole.at(-1)!] : [])]).toEqual(whole);
        expect(txns.length).toBe(Math.ceil(changes.length / per));
        const chunkOf = new Map<string, number>();
        txns.forEach((ops, n) => {
          expect(ops.at(-1)).toEqual({ op: 'comment', comment: COMMENT });
          const rows = new Set(addressed(ops));
          expect(rows.size).toBeLessThanOrEqual(per);
          for (const uuid of rows) {
            // A row's operations never straddle two transactions.
            expect(chunkOf.get(uuid) ?? n).toBe(n);
            chunkOf.set(uuid, n);
          }
        });
        expect(chunkOf.size).toBe(changes.length);
      }),
    );
  });

  it('keeps the owned-key mutation form in every chunk (never a whole-map update)', () => {
    const txns = changeSetTransactions([row(1), row(2), row(3)], COMMENT, 2);
    for (const ops of txns) {
      for (const op of ops.slice(0, -1)) {
        expect(op.op).toBe('mutate');
        expect(JSON.stringify(op)).toContain('"external_ids","delete",["set",["iface-id","iface-status"]]');
      }
    }
  });
});
