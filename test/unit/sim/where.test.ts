import { describe, expect, it } from 'vitest';
import { dbString, evalWhere, parseWhere } from '../../../src/sim/where.js';

const rec = { bridge: 'xenbr0', name_label: 'n', managed: true, MTU: 1500, other_config: { a: 'b' } };

describe('get_all_records_where expressions (reference/xapi.md §6)', () => {
  const cases: [string, boolean][] = [
    ['true', true],
    ['false', false],
    ['field "bridge"="xenbr0"', true],
    ['field "bridge" = "xenbr1"', false],
    ['"xenbr0" = field "bridge"', true],
    ['field "managed"="true" and field "MTU"="1500"', true],
    ['field "managed"="false" or field "MTU"="1500"', true],
    ['not field "managed"="true"', false],
    ['not (field "bridge"="x" or false)', true],
    ['(field "name__label"="n") and true', true],
    ['field "nosuch"=""', true],
  ];
  it.each(cases)('%s → %s', (src, expected) => {
    expect(evalWhere(parseWhere(src), rec)).toBe(expected);
  });
  it.each(['', 'field', 'field "a"', 'field "a" = ', '(true', 'true)', 'field "a"="b" and', 'x', '"unterminated', 'TRUE'])('rejects %j', (src) => {
    expect(() => parseWhere(src)).toThrow();
  });
  it('uses DB string forms', () => {
    expect([dbString(true), dbString(3), dbString(['a']), dbString({ k: 'v' })]).toStrictEqual(['true', '3', "('a')", "(('k' 'v'))"]);
  });
});
