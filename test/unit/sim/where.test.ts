import { describe, expect, it } from 'vitest';
import { dbString, evalWhere, MissingField, parseWhere, type WhereExpr } from '../../../src/sim/where.js';
import type { SimValue } from '../../../src/sim/wire/values.js';

const row: Readonly<Record<string, SimValue>> = { bridge: 'xenbr0', name__label: 'n', managed: true, MTU: 1500, other_config: { a: 'b' } };
const lookup = (column: string): SimValue => {
  if (!Object.hasOwn(row, column)) throw new MissingField(column);
  return row[column] ?? '';
};

/** A compact rendering of the tree: the grouping is what xapi's grammar decides. */
function show(e: WhereExpr): string {
  switch (e.kind) {
    case 'const':
      return String(e.value);
    case 'not':
      return `not(${show(e.expr)})`;
    case 'and':
    case 'or':
      return `${e.kind}(${show(e.left)},${show(e.right)})`;
    case 'eq': {
      const v = (x: typeof e.left): string => (x.kind === 'field' ? `f:${x.name}` : x.text);
      return `${v(e.left)}=${v(e.right)}`;
    }
  }
}

describe('filter grammar (xen-api ocaml/database/db_filter_parse.mly: %right LNOT below %left LAND LOR)', () => {
  const trees: [string, string][] = [
    ['true and false or true', 'or(and(true,false),true)'],
    ['true or false and false', 'and(or(true,false),false)'],
    ['not true and false', 'not(and(true,false))'],
    ['not true or true', 'not(or(true,true))'],
    ['true and not false or true', 'and(true,not(or(false,true)))'],
    ['(not true) and false', 'and(not(true),false)'],
    ['not not true', 'not(not(true))'],
    ['field "a"="1" or field "b"="2" or field "c"="3"', 'or(or(f:a=1,f:b=2),f:c=3)'],
    ['"x" = field "bridge"', 'x=f:bridge'],
  ];
  it.each(trees)('%s parses as %s', (src, tree) => {
    expect(show(parseWhere(src))).toBe(tree);
  });

  const values: [string, boolean][] = [
    ['true', true],
    ['false', false],
    ['field "bridge"="xenbr0"', true],
    ['field "bridge" = "xenbr1"', false],
    // xapi: (true or false) and false = false; with and binding tighter it would be true.
    ['true or false and false', false],
    // xapi: not (false and true) = true; with not binding tightest it would be false.
    ['not false and false', true],
    ['field "managed"="true" and field "MTU"="1500"', true],
    ['(field "name__label"="n") and true', true],
    ['field "other_config"="((\'a\' \'b\'))"', true],
  ];
  it.each(values)('%s → %s', (src, expected) => {
    expect(evalWhere(parseWhere(src), lookup)).toBe(expected);
  });

  it('a column the row lacks is an error when (and only when) it is evaluated', () => {
    expect(() => evalWhere(parseWhere('field "nosuch"=""'), lookup)).toThrow(MissingField);
    expect(evalWhere(parseWhere('false and field "nosuch"=""'), lookup)).toBe(false);
    expect(evalWhere(parseWhere('true or field "nosuch"=""'), lookup)).toBe(true);
  });

  it.each(['', 'field', 'field "a"', 'field "a" = ', '(true', 'true)', 'field "a"="b" and', 'not', '"a"'])('%j is Stdlib.Parsing.Parse_error', (src) => {
    expect(() => parseWhere(src)).toThrow('Stdlib.Parsing.Parse_error');
  });
  it.each(['x', 'TRUE', '"unterminated', 'true\r'])('%j is a lexing failure', (src) => {
    expect(() => parseWhere(src)).toThrow('Failure("lexing: empty token")');
  });
  it('keywords are matched as prefixes, as ocamllex does ("trueor" is true or)', () => {
    expect(show(parseWhere('trueorfalse'))).toBe('or(true,false)');
  });
  it('uses DB string forms', () => {
    expect([dbString(true), dbString(3), dbString(['a']), dbString({ k: 'v' })]).toStrictEqual(['true', '3', "('a')", "(('k' 'v'))"]);
  });
});
