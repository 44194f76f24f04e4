import type { XapiValue } from '../xapi/codec/types.js';

/**
 * The `get_all_records_where` expression language (reference/xapi.md §6; XAPI
 * `ocaml/database/db_filter_lex.mll`, `db_filter_parse.mly`):
 *   expr := term ('or' term)* ; term := factor ('and' factor)* ;
 *   factor := 'not' factor | '(' expr ')' | 'true' | 'false' | value '=' value
 *   value := 'field' STRING | STRING
 * String literals have no escapes (cannot contain `"`). Only string equality exists.
 */
export type WhereExpr =
  | { readonly kind: 'const'; readonly value: boolean }
  | { readonly kind: 'not'; readonly expr: WhereExpr }
  | { readonly kind: 'and' | 'or'; readonly left: WhereExpr; readonly right: WhereExpr }
  | { readonly kind: 'eq'; readonly left: WhereValue; readonly right: WhereValue };
export type WhereValue = { readonly kind: 'field'; readonly name: string } | { readonly kind: 'literal'; readonly text: string };

export class WhereSyntaxError extends Error {}

type Token = { t: 'kw'; v: 'field' | 'and' | 'or' | 'not' | 'true' | 'false' } | { t: 'str'; v: string } | { t: 'sym'; v: '(' | ')' | '=' };

function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src.charAt(i);
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '(' || c === ')' || c === '=') {
      out.push({ t: 'sym', v: c });
      i += 1;
    } else if (c === '"') {
      const end = src.indexOf('"', i + 1);
      if (end < 0) throw new WhereSyntaxError('unterminated string literal');
      out.push({ t: 'str', v: src.slice(i + 1, end) });
      i = end + 1;
    } else {
      const m = /^[a-z]+/.exec(src.slice(i));
      const word = m?.[0];
      if (word === 'field' || word === 'and' || word === 'or' || word === 'not' || word === 'true' || word === 'false') {
        out.push({ t: 'kw', v: word });
        i += word.length;
      } else {
        throw new WhereSyntaxError(`unexpected character ${JSON.stringify(c)} at ${i}`);
      }
    }
  }
  return out;
}

export function parseWhere(src: string): WhereExpr {
  const tokens = lex(src);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isKw = (v: string): boolean => {
    const t = peek();
    return t?.t === 'kw' && t.v === v;
  };
  const expectSym = (v: string): void => {
    const t = peek();
    if (t?.t !== 'sym' || t.v !== v) throw new WhereSyntaxError(`expected ${v} at token ${pos}`);
    pos += 1;
  };
  const value = (): WhereValue => {
    const t = peek();
    if (t?.t === 'kw' && t.v === 'field') {
      pos += 1;
      const name = peek();
      if (name?.t !== 'str') throw new WhereSyntaxError('field needs a string name');
      pos += 1;
      return { kind: 'field', name: name.v };
    }
    if (t?.t === 'str') {
      pos += 1;
      return { kind: 'literal', text: t.v };
    }
    throw new WhereSyntaxError(`expected a value at token ${pos}`);
  };
  const factor = (): WhereExpr => {
    if (isKw('not')) {
      pos += 1;
      return { kind: 'not', expr: factor() };
    }
    if (isKw('true') || isKw('false')) {
      const v = isKw('true');
      pos += 1;
      return { kind: 'const', value: v };
    }
    const t = peek();
    if (t?.t === 'sym' && t.v === '(') {
      pos += 1;
      const e = expr();
      expectSym(')');
      return e;
    }
    const left = value();
    expectSym('=');
    return { kind: 'eq', left, right: value() };
  };
  const term = (): WhereExpr => {
    let left = factor();
    while (isKw('and')) {
      pos += 1;
      left = { kind: 'and', left, right: factor() };
    }
    return left;
  };
  const expr = (): WhereExpr => {
    let left = term();
    while (isKw('or')) {
      pos += 1;
      left = { kind: 'or', left, right: term() };
    }
    return left;
  };
  const result = expr();
  if (pos !== tokens.length) throw new WhereSyntaxError(`trailing input at token ${pos}`);
  return result;
}

/**
 * The DB string form of a field value (reference §6, `db_cache_impl.ml:318-334`): bools are
 * `true`/`false`, ints decimal, refs and enums as is. Sets and maps use XAPI's s-expression
 * serialisation, e.g. `('a' 'b')` and `(('k' 'v'))`.
 */
export function dbString(v: XapiValue | undefined): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `(${(v as readonly XapiValue[]).map((e) => `'${dbString(e)}'`).join(' ')})`;
  return `(${Object.entries(v).map(([k, e]) => `('${k}' '${dbString(e)}')`).join(' ')})`;
}

/** DB column names join namespaced fields with `__` (`name__label` ↔ field `name_label`). */
function column(record: Readonly<Record<string, XapiValue>>, name: string): XapiValue | undefined {
  if (Object.hasOwn(record, name)) return record[name];
  const field = name.replace(/__/g, '_');
  return Object.hasOwn(record, field) ? record[field] : undefined;
}

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

/** The field names an expression reads (DB column names, `__` joining namespaces). */
export function whereFields(e: WhereExpr): Set<string> {
  const out = new Set<string>();
  const value = (v: WhereValue): void => {
    if (v.kind === 'field') out.add(v.name).add(v.name.replace(/__/g, '_'));
  };
  const walk = (x: WhereExpr): void => {
    if (x.kind === 'eq') {
      value(x.left);
      value(x.right);
    } else if (x.kind === 'not') walk(x.expr);
    else if (x.kind === 'and' || x.kind === 'or') {
      walk(x.left);
      walk(x.right);
    }
  };
  walk(e);
  return out;
}

export function evalWhere(e: WhereExpr, record: Readonly<Record<string, XapiValue>>): boolean {
  const val = (v: WhereValue): string => (v.kind === 'literal' ? v.text : dbString(column(record, v.name)));
  switch (e.kind) {
    case 'const':
      return e.value;
    case 'not':
      return !evalWhere(e.expr, record);
    case 'and':
      return evalWhere(e.left, record) && evalWhere(e.right, record);
    case 'or':
      return evalWhere(e.left, record) || evalWhere(e.right, record);
    case 'eq':
      return val(e.left) === val(e.right);
  }
}
