import { describe, expect, test } from 'vitest';
import { OvsdbError } from '../../../src/ovsdb/errors.js';
import { Replica, type MonitorSpec } from '../../../src/ovsdb/replica.js';
import { sharedStrings } from '../../../src/ovsdb/string-pool.js';

const A = 'aaaaaaaa-0000-0000-0000-000000000001';
const B = 'aaaaaaaa-0000-0000-0000-000000000002';
const SPEC: MonitorSpec = { T: { name: 'string', ids: 'string-map', mode: 'optional-string', tags: 'string-set' } };

function withRow(initial: Record<string, unknown>): Replica {
  const r = new Replica(SPEC);
  r.rebuild({ T: { [A]: { initial } } }, 'update2');
  return r;
}

describe('update2 modify diffs (docs/ovsdb.md §2)', () => {
  test.each([
    ['add a key', { ids: ['map', [['a', '1']]] }, { ids: ['map', [['b', '2']]] }, { a: '1', b: '2' }],
    ['remove a key (same pair)', { ids: ['map', [['a', '1'], ['b', '2']]] }, { ids: ['map', [['b', '2']]] }, { a: '1' }],
    ['change a value', { ids: ['map', [['a', '1']]] }, { ids: ['map', [['a', '9']]] }, { a: '9' }],
    ['add, remove and change at once', { ids: ['map', [['a', '1'], ['b', '2']]] }, { ids: ['map', [['a', 'x'], ['b', '2'], ['c', '3']]] }, { a: 'x', c: '3' }],
    ['empty initial map omitted', {}, { ids: ['map', [['a', '1']]] }, { a: '1' }],
  ])('%s', (_name, initial, diff, expected) => {
    const r = withRow({ name: 'n', ...initial });
    const change = r.apply({ T: { [A]: { modify: diff } } }, 'update2');
    const row = r.table('T')!.get(A)!;
    expect(Object.fromEntries(row.ids as ReadonlyMap<string, string>)).toEqual(expected);
    expect(change.tables.get('T')!.get(A)!.kind).toBe('modified');
  });

  test('applying the same map diff twice undoes it', () => {
    const r = withRow({ ids: ['map', [['a', '1']]] });
    const d = { T: { [A]: { modify: { ids: ['map', [['a', '2'], ['b', '1']]] } } } };
    r.apply(d, 'update2');
    r.apply(d, 'update2');
    // a: 1 → 2 → (same pair: removed); b: added → removed. Diffs are not idempotent: apply once.
    expect(Object.fromEntries(r.table('T')!.get(A)!.ids as ReadonlyMap<string, string>)).toEqual({});
  });

  test.each([
    ['set: add member', ['set', ['x']], ['set', ['y']], ['x', 'y']],
    ['set: remove member', ['set', ['x', 'y']], 'x', ['y']],
    ['set: toggle both', ['set', ['x']], ['set', ['x', 'z']], ['z']],
  ])('%s', (_name, initial, diff, expected) => {
    const r = withRow({ tags: initial });
    r.apply({ T: { [A]: { modify: { tags: diff } } } }, 'update2');
    expect([...(r.table('T')!.get(A)!.tags as string[])].sort()).toEqual(expected);
  });

  test('optional and scalar columns carry the new value', () => {
    const r = withRow({ name: 'a', mode: 'secure' });
    r.apply({ T: { [A]: { modify: { mode: 'standalone', name: 'b' } } } }, 'update2');
    expect(r.table('T')!.get(A)).toMatchObject({ mode: 'standalone', name: 'b' });
    r.apply({ T: { [A]: { modify: { mode: ['set', []] } } } }, 'update2');
    expect(r.table('T')!.get(A)!.mode).toBeUndefined();
  });

  test('old row objects are not mutated (consumers may hold them)', () => {
    const r = withRow({ ids: ['map', [['a', '1']]] });
    const before = r.table('T')!.get(A)!;
    const change = r.apply({ T: { [A]: { modify: { ids: ['map', [['a', '2']]] } } } }, 'update2');
    expect((before.ids as ReadonlyMap<string, string>).get('a')).toBe('1');
    const c = change.tables.get('T')!.get(A)!;
    expect(c.kind === 'modified' && c.old).toBe(before);
  });
});

describe('inconsistency and readiness', () => {
  test.each([
    ['modify of a missing row', { T: { [B]: { modify: { name: 'x' } } } }],
    ['delete of a missing row', { T: { [B]: { delete: null } } }],
    ['insert of an existing row', { T: { [A]: { insert: { name: 'x' } } } }],
  ])('%s → OVSDB_REPLICA_INCONSISTENT and not ready', (_name, updates) => {
    const r = withRow({ name: 'n' });
    let caught: unknown;
    try {
      r.apply(updates, 'update2');
    } catch (err) {
      caught = err;
    }
    expect((caught as OvsdbError).code).toBe('OVSDB_REPLICA_INCONSISTENT');
    expect(r.ready).toBe(false);
    expect(r.table('T')).toBeUndefined();
  });

  test('not exposed before the first rebuild, nor after invalidate()', () => {
    const r = new Replica(SPEC);
    expect(r.table('T')).toBeUndefined();
    r.rebuild({}, 'update2');
    expect(r.table('T')!.size).toBe(0);
    r.invalidate();
    expect(r.table('T')).toBeUndefined();
  });

  test('rebuild reports inserted, modified and deleted rows (deletions computed by us)', () => {
    const r = new Replica(SPEC);
    r.rebuild({ T: { [A]: { initial: { name: 'a' } }, [B]: { initial: { name: 'b' } } } }, 'update2');
    const C = 'aaaaaaaa-0000-0000-0000-000000000003';
    const change = r.rebuild({ T: { [A]: { initial: { name: 'a2' } }, [C]: { initial: { name: 'c' } } } }, 'update2');
    const t = change.tables.get('T')!;
    expect(change.resync).toBe(true);
    expect(t.get(A)!.kind).toBe('modified');
    expect(t.get(C)!.kind).toBe('inserted');
    const b = t.get(B)!;
    expect(b.kind === 'deleted' && b.old.name).toBe('b');
    expect(r.sizes()).toEqual({ T: 2 });
    // Unchanged rows are not reported.
    expect(r.rebuild({ T: { [A]: { initial: { name: 'a2' } }, [C]: { initial: { name: 'c' } } } }, 'update2').tables.size).toBe(0);
  });

  test('legacy update format: insert, modify (new holds all columns), delete', () => {
    const r = new Replica(SPEC);
    r.rebuild({ T: { [A]: { new: { name: 'a', ids: ['map', [['k', 'v']]], mode: ['set', []], tags: ['set', []] } } } }, 'update');
    r.apply({ T: { [A]: { old: { ids: ['map', [['k', 'v']]] }, new: { name: 'a', ids: ['map', [['k', 'w']]], mode: 'x', tags: 't' } } } }, 'update');
    expect(r.table('T')!.get(A)).toMatchObject({ mode: 'x', tags: ['t'] });
    expect((r.table('T')!.get(A)!.ids as ReadonlyMap<string, string>).get('k')).toBe('w');
    const change = r.apply({ T: { [A]: { old: { name: 'a' } } } }, 'update');
    expect(change.tables.get('T')!.get(A)!.kind).toBe('deleted');
    expect(r.table('T')!.size).toBe(0);
  });

  test('tables and columns not in the spec are ignored', () => {
    const r = new Replica(SPEC);
    r.rebuild({ T: { [A]: { initial: { name: 'a', other: 1 } } }, Other: { [B]: { initial: {} } } }, 'update2');
    expect(Object.keys(r.table('T')!.get(A)!).sort()).toEqual(['_uuid', 'ids', 'mode', 'name', 'tags']);
  });
});

describe('shared strings (src/ovsdb/string-pool.ts)', () => {
  const NET = '58228000-53e4-48ae-8d5f-e8674aa7234d';
  const VIF = 'f12b63e8-0365-4fd4-b909-631b18414892';
  const C = 'aaaaaaaa-0000-0000-0000-000000000003';
  const ids = (vif: string): unknown => ['map', [['xs-network-uuid', NET], ['xs-vif-uuid', vif], ['status', 'active']]];

  test('a value repeated across the rows of one reply is kept once, and decodes the same', () => {
    const r = new Replica(SPEC);
    const before = sharedStrings();
    r.rebuild({ T: { [A]: { initial: { ids: ids(VIF) } }, [B]: { initial: { ids: ids(`${VIF.slice(0, -1)}3`) } }, [C]: { initial: { ids: ids(`${VIF.slice(0, -1)}4`) } } } }, 'update2');
    // The network uuid of rows B and C is row A's; the vif uuids differ; "active" is too short to pool.
    expect(sharedStrings() - before).toBe(2);
    for (const id of [A, B, C]) expect((r.table('T')!.get(id)!.ids as ReadonlyMap<string, string>).get('xs-network-uuid')).toBe(NET);
  });

  test("a modify's value equal to another value of the row keeps the row's copy", () => {
    const r = withRow({ ids: ids(VIF) });
    const before = sharedStrings();
    r.apply({ T: { [A]: { modify: { ids: ['map', [['iface-id', VIF]]] } } } }, 'update2');
    expect(sharedStrings() - before).toBe(1);
    expect(Object.fromEntries(r.table('T')!.get(A)!.ids as ReadonlyMap<string, string>)).toEqual({ 'xs-network-uuid': NET, 'xs-vif-uuid': VIF, status: 'active', 'iface-id': VIF });
  });
});
