import { describe, expect, test } from 'vitest';
import { sharedStrings, StringPool } from '../../../src/ovsdb/string-pool.js';

const NET = '58228000-53e4-48ae-8d5f-e8674aa7234d';

/** How many strings `run` shared (the process-wide counter moves by exactly that). */
function sharedBy(run: () => void): number {
  const before = sharedStrings();
  run();
  return sharedStrings() - before;
}

describe('StringPool: one copy of equal decoded strings per batch', () => {
  test.each([
    ['a uuid seen three times', [NET, NET, NET], 2],
    ['distinct uuids', [NET, NET.replace('5', '6'), NET.replace('5', '7')], 0],
    ['short strings (V8 already shares them)', ['active', 'active', 'inactive'], 0],
    ['ten characters, below the minimum', ['0123456789', '0123456789'], 0],
    ['eleven characters', ['01234567890', '01234567890'], 1],
    ['longer than the maximum', ['x'.repeat(129), 'x'.repeat(129)], 0],
  ])('%s', (_name, values, shared) => {
    const pool = new StringPool();
    expect(sharedBy(() => { values.forEach((v, i) => { expect(pool.intern(v)).toBe(values[i]); }); })).toBe(shared);
  });

  test('prefers an equal value of the row being updated (iface-id beside xs-vif-uuid)', () => {
    const pool = new StringPool();
    const row = new Map([['xs-vif-uuid', NET]]);
    expect(sharedBy(() => { expect(pool.intern(NET, row)).toBe(NET); })).toBe(1);
  });

  test('a new pool starts empty: nothing is retained from an earlier batch', () => {
    new StringPool().intern(NET);
    expect(sharedBy(() => new StringPool().intern(NET))).toBe(0);
  });
});
