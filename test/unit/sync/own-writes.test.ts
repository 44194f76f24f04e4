import { describe, expect, test } from 'vitest';
import type { ReplicaRow } from '../../../src/ovsdb/replica.js';
import type { RowChange } from '../../../src/reconcile/changeset.js';
import { OwnWrites } from '../../../src/sync/own-writes.js';

const U = '00000000-0000-4000-8000-000000000001';
const before: ReplicaRow = { _uuid: U, name: 'vif1.0', external_ids: new Map([['xs-vif-uuid', 'v1'], ['iface-status', 'inactive'], ['foreign', 'f']]) };
/** The pass sets iface-id and iface-status and removes neutron-port-uuid (absent: nothing to remove). */
const write: RowChange = {
  table: 'Interface',
  uuid: U,
  name: 'vif1.0',
  maps: [{ column: 'external_ids', set: [{ key: 'iface-id', value: 'v1', previous: undefined }, { key: 'iface-status', value: 'active', previous: 'inactive' }], remove: ['neutron-port-uuid'] }],
  scalars: [],
};
const after = (ids: Record<string, string>, extra: Partial<ReplicaRow> = {}): ReplicaRow => ({ ...before, external_ids: new Map(Object.entries(ids)), ...extra });
const exact = { 'xs-vif-uuid': 'v1', 'iface-status': 'active', foreign: 'f', 'iface-id': 'v1' };

describe('OwnWrites: the echo of the daemon’s own write, and nothing else', () => {
  test.each([
    ['exactly the write', after(exact), true],
    ['another key changed too (a coalesced foreign write)', after({ ...exact, foreign: 'g' }), false],
    ['a foreign key added too', after({ ...exact, other: 'x' }), false],
    ['an owned key holds another value', after({ ...exact, 'iface-id': 'v2' }), false],
    ['a key the write removed is there', after({ ...exact, 'neutron-port-uuid': 'n' }), false],
    ['a key the write did not touch is gone', after({ 'xs-vif-uuid': 'v1', 'iface-status': 'active', 'iface-id': 'v1' }), false],
    ['another column changed', after(exact, { name: 'vif9.0' }), false],
  ])('%s → %s', (_name, row, matches) => {
    const own = new OwnWrites();
    own.expect([write]);
    expect(own.matches(U, before, row)).toBe(matches);
    // A match is consumed; a mismatch leaves the row expected for its real echo.
    expect(own.take()).toEqual(matches ? [] : [U]);
  });

  test('matches once, only rows it was told about, and only Interface rows', () => {
    const own = new OwnWrites();
    own.expect([write, { ...write, table: 'Bridge', uuid: '00000000-0000-4000-8000-000000000002' }]);
    expect(own.size).toBe(1);
    expect(own.matches('00000000-0000-4000-8000-000000000009', before, after(exact))).toBe(false);
    expect(own.matches(U, before, after(exact))).toBe(true);
    expect(own.matches(U, before, after(exact))).toBe(false);
  });

  test('a write with a scalar column is never taken for an echo', () => {
    const own = new OwnWrites();
    own.expect([{ ...write, scalars: [{ column: 'fail_mode', value: 'secure', previous: undefined }] }]);
    expect(own.matches(U, before, after(exact))).toBe(false);
  });
});
