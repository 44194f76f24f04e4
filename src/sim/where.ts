import { DateTime, Double, formatG, Int32, type SimValue } from './wire/values.js';

/**
 * The `get_all_records_where` expression language exactly as xapi parses it
 * (xapi-project/xen-api ocaml/database/db_filter_lex.mll, db_filter_parse.mly):
 *   expr := value '=' value | expr 'and' expr | expr 'or' expr | 'not' expr | 'true' | 'false' | '(' expr ')'
 *   value := STRING | 'field' STRING
 * `%right LNOT` is declared BELOW `%left LAND LOR` (db_filter_parse.mly:18-19): `and` and `or` share
 * one precedence level and chain left to right (`a or b and c` is `(a or b) and c`), and `not` takes
 * the whole rest of the chain (`not a and b` is `not (a and b)`). String literals have no escapes.
 */
export type WhereExpr =
  | { readonly kind: 'const'; readonly value: boolean }
  | { readonly kind: 'not'; readonly expr: WhereExpr }
  | { readonly kind: 'and' | 'or'; readonly left: WhereExpr; readonly right: WhereExpr }
  | { readonly kind: 'eq'; readonly left: WhereValue; readonly right: WhereValue };
export type WhereValue = { readonly kind: 'field'; readonly name: string } | { readonly kind: 'literal'; readonly text: string };

/**
 * A filter xapi cannot parse. `message` is the OCaml exception text xapi puts in
 * `INVALID_VALUE [expr; text]` (exnHelper.ml:71-72): `Stdlib.Parsing.Parse_error` from the parser,
 * `Failure("lexing: empty token")` from the lexer.
 */
export class WhereSyntaxError extends Error {}

/** A column the table does not have: xapi raises `DBCache_NotFound ("missing field", col, "")` (db_cache_types.ml:187-189). */
export class MissingField extends Error {
  constructor(readonly column: string) {
    super(`missing field ${column}`);
  }
}

const PARSE_ERROR = 'Stdlib.Parsing.Parse_error';
const LEX_ERROR = 'Failure("lexing: empty token")';

type Token = { t: 'kw'; v: 'field' | 'and' | 'or' | 'not' | 'true' | 'false' } | { t: 'str'; v: string } | { t: 'sym'; v: '(' | ')' | '=' };
const KEYWORDS = ['field', 'and', 'or', 'not', 'true', 'false'] as const;

/** db_filter_lex.mll: blanks are space, tab and newline only; keywords match as prefixes. */
function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src.charAt(i);
    if (c === ' ' || c === '\t' || c === '\n') {
      i += 1;
    } else if (c === '(' || c === ')' || c === '=') {
      out.push({ t: 'sym', v: c });
      i += 1;
    } else if (c === '"') {
      const end = src.indexOf('"', i + 1);
      if (end < 0) throw new WhereSyntaxError(LEX_ERROR);
      out.push({ t: 'str', v: src.slice(i + 1, end) });
      i = end + 1;
    } else {
      const word = KEYWORDS.find((k) => src.startsWith(k, i));
      if (word === undefined) throw new WhereSyntaxError(LEX_ERROR);
      out.push({ t: 'kw', v: word });
      i += word.length;
    }
  }
  return out;
}

export function parseWhere(src: string): WhereExpr {
  const tokens = lex(src);
  let pos = 0;
  const fail = (): never => {
    throw new WhereSyntaxError(PARSE_ERROR);
  };
  const isKw = (v: string): boolean => {
    const t = tokens[pos];
    return t?.t === 'kw' && t.v === v;
  };
  const isSym = (v: string): boolean => {
    const t = tokens[pos];
    return t?.t === 'sym' && t.v === v;
  };
  const value = (): WhereValue => {
    const t = tokens[pos];
    if (t?.t === 'kw' && t.v === 'field') {
      const name = tokens[pos + 1];
      if (name?.t !== 'str') return fail();
      pos += 2;
      return { kind: 'field', name: name.v };
    }
    if (t?.t !== 'str') return fail();
    pos += 1;
    return { kind: 'literal', text: t.v };
  };
  // A chain of operands joined by and/or, folded left; `not` swallows the rest of the chain.
  const chain = (): WhereExpr => {
    let left = operand();
    for (;;) {
      const kind = isKw('and') ? 'and' : isKw('or') ? 'or' : undefined;
      if (kind === undefined) return left;
      pos += 1;
      left = { kind, left, right: operand() };
    }
  };
  const operand = (): WhereExpr => {
    if (isKw('not')) {
      pos += 1;
      return { kind: 'not', expr: chain() };
    }
    if (isKw('true') || isKw('false')) {
      const v = isKw('true');
      pos += 1;
      return { kind: 'const', value: v };
    }
    if (isSym('(')) {
      pos += 1;
      const e = chain();
      if (!isSym(')')) fail();
      pos += 1;
      return e;
    }
    const left = value();
    if (!isSym('=')) fail();
    pos += 1;
    return { kind: 'eq', left, right: value() };
  };
  const result = chain();
  if (pos !== tokens.length) fail();
  return result;
}

/**
 * The DB string form of a field value (docs/xapi.md §6, `db_cache_impl.ml:318-334`): bools are
 * `true`/`false`, ints decimal, refs and enums as is. Sets and maps use XAPI's s-expression
 * serialisation, e.g. `('a' 'b')` and `(('k' 'v'))`.
 */
export function dbString(v: SimValue | undefined): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  // OCaml's string_of_float: "%.12g", a trailing "." when integral.
  if (v instanceof Double) return formatG(v.value, 12).replace(/^(-?\d+)$/, '$1.');
  if (v instanceof DateTime) return v.text;
  if (v instanceof Int32) return String(v.value);
  if (Array.isArray(v)) return `(${(v as readonly SimValue[]).map((e) => `'${dbString(e)}'`).join(' ')})`;
  return `(${Object.entries(v).map(([k, e]) => `('${k}' '${dbString(e)}')`).join(' ')})`;
}

/**
 * A row as a filter sees it: DB column name → value; throws {@link MissingField} for a column the
 * table lacks. DB columns join namespaced fields with `__` (`name__label` for the API's
 * `name_label`; ocaml/idl/escaping.ml:16, ocaml/database/db_names.ml:26), so `field "name_label"` is
 * a missing field, as on xapi.
 */
export type ColumnLookup = (column: string) => SimValue;

/**
 * The literals of an expression that is only `field "uuid"="…"` terms joined by `or` (what lookups
 * by uuid send), else undefined. Such a filter selects exactly the rows with those uuids, so the
 * simulator can answer it from its uuid index instead of evaluating every row (XAPI's cost is its own;
 * the simulator must not dominate a benchmark at pool scale).
 */
export function uuidDisjunction(e: WhereExpr): Set<string> | undefined {
  const out = new Set<string>();
  const walk = (x: WhereExpr): boolean => {
    if (x.kind === 'or') return walk(x.left) && walk(x.right);
    if (x.kind !== 'eq') return false;
    const [f, l] = x.left.kind === 'field' ? [x.left, x.right] : [x.right, x.left];
    if (f.kind !== 'field' || f.name !== 'uuid' || l.kind !== 'literal') return false;
    out.add(l.text);
    return true;
  };
  return walk(e) ? out : undefined;
}

/** `Db_filter.eval_expr` (db_filter.ml:93-109): short-circuit `&&`/`||`, string equality only. */
export function evalWhere(e: WhereExpr, column: ColumnLookup): boolean {
  const val = (v: WhereValue): string => (v.kind === 'literal' ? v.text : dbString(column(v.name)));
  switch (e.kind) {
    case 'const':
      return e.value;
    case 'not':
      return !evalWhere(e.expr, column);
    case 'and':
      return evalWhere(e.left, column) && evalWhere(e.right, column);
    case 'or':
      return evalWhere(e.left, column) || evalWhere(e.right, column);
    case 'eq':
      return val(e.left) === val(e.right);
  }
}
