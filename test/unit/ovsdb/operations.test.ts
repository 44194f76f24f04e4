import { describe, expect, test } from 'vitest';
import { OvsdbError, OvsdbOperationError } from '../../../src/ovsdb/errors.js';
import { mutateMapKeys, parseTransactResult, updateColumns, wait, whereUuid } from '../../../src/ovsdb/operations.js';
import { isTransient } from '../../../src/retry.js';

const U = '470089ff-a66c-4e0d-af9f-a5f770bf3723';

describe('mutateMapKeys', () => {
  test('delete of every touched key, then insert of the pairs being set, addressed by _uuid', () => {
    expect(mutateMapKeys('Interface', U, 'external_ids', { 'iface-id': 'vm-42', 'vm-id': 'v' }, ['iface-status'])).toEqual({
      op: 'mutate',
      table: 'Interface',
      where: [['_uuid', '==', ['uuid', U]]],
      mutations: [
        ['external_ids', 'delete', ['set', ['iface-id', 'vm-id', 'iface-status']]],
        ['external_ids', 'insert', ['map', [['iface-id', 'vm-42'], ['vm-id', 'v']]]],
      ],
    });
  });

  test('remove only: no insert; Map input; a key both set and removed is set', () => {
    expect(mutateMapKeys('Bridge', U, 'other_config', new Map(), ['disable-in-band']).mutations).toEqual([
      ['other_config', 'delete', ['set', ['disable-in-band']]],
    ]);
    expect(mutateMapKeys('Bridge', U, 'external_ids', new Map([['a', '1']]), ['a']).mutations).toEqual([
      ['external_ids', 'delete', ['set', ['a']]],
      ['external_ids', 'insert', ['map', [['a', '1']]]],
    ]);
  });

  test('updateColumns clears an optional column with an empty set', () => {
    expect(updateColumns('Bridge', U, { fail_mode: undefined, name: 'x' })).toEqual({
      op: 'update',
      table: 'Bridge',
      where: whereUuid(U),
      row: { fail_mode: ['set', []], name: 'x' },
    });
  });
});

describe('parseTransactResult (RFC 7047 §4.1.3)', () => {
  test('success: one result per operation, typed', () => {
    expect(parseTransactResult(4, [{ count: 1 }, { uuid: ['uuid', U] }, { rows: [{ name: 'a' }] }, {}])).toEqual([
      { count: 1 },
      { uuid: U },
      { rows: [{ name: 'a' }] },
      {},
    ]);
  });

  test.each([
    [
      'failing operation then nulls',
      3,
      [{ count: 1 }, { error: 'aborted', details: 'aborted by request' }, null],
      { error: 'aborted', details: 'aborted by request', opIndex: 1, commitError: false },
    ],
    [
      'wait precondition failed',
      2,
      [{ error: 'timed out', details: '"where" clause test failed' }, null],
      { error: 'timed out', opIndex: 0, commitError: false },
    ],
    [
      'commit error: the extra element',
      1,
      [{ count: 1 }, { error: 'referential integrity violation', details: 'Table Bridge column ports row …' }],
      { error: 'referential integrity violation', opIndex: 1, commitError: true },
    ],
  ])('%s', (_name, n, result, expected) => {
    let caught: unknown;
    try {
      parseTransactResult(n, result);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OvsdbOperationError);
    expect(caught).toMatchObject({ code: 'OVSDB_OPERATION', ...expected });
  });

  test('"timed out" is transient, "constraint violation" is not', () => {
    expect(isTransient(new OvsdbOperationError('timed out', undefined, 0, false))).toBe(true);
    expect(isTransient(new OvsdbOperationError('constraint violation', undefined, 0, false))).toBe(false);
  });

  test.each([
    ['not an array', { count: 1 }],
    ['too short without error', [{ count: 1 }]],
    ['non-object element', [{ count: 1 }, 5]],
  ])('%s → OVSDB_PROTOCOL', (_name, result) => {
    expect(() => parseTransactResult(2, result)).toThrow(OvsdbError);
    expect(() => parseTransactResult(2, result)).toThrow(expect.objectContaining({ code: 'OVSDB_PROTOCOL' }) as Error);
  });

  test('wait builder', () => {
    expect(wait('Interface', whereUuid(U), ['external_ids'], '==', [{ external_ids: ['map', []] }], 0)).toMatchObject({ op: 'wait', timeout: 0 });
  });
});
