import { OvsdbError, OvsdbOperationError, isRecord } from './errors.js';
import { map, set, uuid, type Atom, type Value } from './notation.js';

/** RFC 7047 §5.1 `<condition>`: `[column, function, value]`. */
export type ConditionFunction = '<' | '<=' | '==' | '!=' | '>=' | '>' | 'includes' | 'excludes';
export type Condition = readonly [string, ConditionFunction, Value];
/** RFC 7047 §5.1 `<mutation>`: `[column, mutator, value]`. */
export type Mutator = '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete';
export type Mutation = readonly [string, Mutator, Value];
export type Row = Readonly<Record<string, Value>>;

/** Typed RFC 7047 §5.2 operations (docs/ovsdb.md §3). */
export interface MutateOperation {
  readonly op: 'mutate';
  readonly table: string;
  readonly where: readonly Condition[];
  readonly mutations: readonly Mutation[];
}

export type Operation =
  | MutateOperation
  | { readonly op: 'insert'; readonly table: string; readonly row: Row; readonly 'uuid-name'?: string }
  | { readonly op: 'select'; readonly table: string; readonly where: readonly Condition[]; readonly columns?: readonly string[] }
  | { readonly op: 'update'; readonly table: string; readonly where: readonly Condition[]; readonly row: Row }
  | { readonly op: 'delete'; readonly table: string; readonly where: readonly Condition[] }
  | {
      readonly op: 'wait';
      readonly table: string;
      readonly where: readonly Condition[];
      readonly columns: readonly string[];
      readonly until: '==' | '!=';
      readonly rows: readonly Row[];
      readonly timeout?: number;
    }
  | { readonly op: 'comment'; readonly comment: string }
  | { readonly op: 'commit'; readonly durable: boolean }
  | { readonly op: 'abort' };

/**
 * One successful operation's result. ovsdb-server returns `{}` for `wait`, `comment` and `commit`
 * (docs/ovsdb.md §3), `{"uuid":…}` for insert, `{"count":n}` for update/mutate/delete and
 * `{"rows":[…]}` for select (rows in wire notation).
 */
export interface OperationResult {
  readonly uuid?: string;
  readonly count?: number;
  readonly rows?: readonly Readonly<Record<string, unknown>>[];
}

/** `where` clause addressing one row by `_uuid`: a row deleted meanwhile matches nothing. */
export function whereUuid(rowUuid: string): Condition[] {
  return [['_uuid', '==', uuid(rowUuid)]];
}

export function insert(table: string, row: Row, uuidName?: string): Operation {
  return uuidName === undefined ? { op: 'insert', table, row } : { op: 'insert', table, row, 'uuid-name': uuidName };
}

export function select(table: string, where: readonly Condition[], columns?: readonly string[]): Operation {
  return columns === undefined ? { op: 'select', table, where } : { op: 'select', table, where, columns };
}

export function update(table: string, where: readonly Condition[], row: Row): Operation {
  return { op: 'update', table, where, row };
}

export function mutate(table: string, where: readonly Condition[], mutations: readonly Mutation[]): MutateOperation {
  return { op: 'mutate', table, where, mutations };
}

export function del(table: string, where: readonly Condition[]): Operation {
  return { op: 'delete', table, where };
}

export function wait(
  table: string,
  where: readonly Condition[],
  columns: readonly string[],
  until: '==' | '!=',
  rows: readonly Row[],
  timeout?: number,
): Operation {
  return timeout === undefined
    ? { op: 'wait', table, where, columns, until, rows }
    : { op: 'wait', table, where, columns, until, rows, timeout };
}

export function comment(text: string): Operation {
  return { op: 'comment', comment: text };
}

/**
 * Sets and removes some keys of a `map<string,string>` column of one row, leaving every other key as it
 * is (docs/design.md §2.4; docs/ovsdb.md §3). One `mutate` addressed by `_uuid` whose mutations run in order:
 * `delete ["set",[every key being set or removed]]`, then `insert ["map",[[k,v]…]]` for the keys being
 * set (a map `insert` never overwrites an existing key, hence the delete first). A row deleted meanwhile
 * matches nothing: the result is `{"count":0}`, not an error. Idempotent, so safe to resend after a
 * reconnect that lost the reply. A key both set and removed is set. With nothing to set or remove the
 * operation is a harmless no-op (callers normally skip it: an empty change set sends no transaction).
 */
export function mutateMapKeys(
  table: string,
  rowUuid: string,
  column: string,
  setKeys: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
  remove: Iterable<string>,
): MutateOperation {
  const pairs: [string, string][] =
    setKeys instanceof Map ? [...(setKeys as ReadonlyMap<string, string>)] : Object.entries(setKeys as Readonly<Record<string, string>>);
  const setNames = new Set(pairs.map(([k]) => k));
  const touched = new Set<string>(setNames);
  for (const key of remove) touched.add(key);
  const mutations: Mutation[] = [[column, 'delete', set(touched)]];
  if (pairs.length > 0) mutations.push([column, 'insert', map(pairs)]);
  return mutate(table, whereUuid(rowUuid), mutations);
}

/**
 * Writes whole scalar columns of one row by `_uuid` (an `update` replaces each named column). For an
 * optional column (`fail_mode`, `system_type`: a set of 0..1) pass `undefined` to clear it, which is
 * written as `["set",[]]`.
 */
export function updateColumns(table: string, rowUuid: string, columns: Readonly<Record<string, Atom | undefined>>): Operation {
  const row: Record<string, Value> = {};
  for (const [name, value] of Object.entries(columns)) row[name] = value === undefined ? set([]) : value;
  return update(table, whereUuid(rowUuid), row);
}

/**
 * Parses a `transact` result array (RFC 7047 §4.1.3): one element per operation; the first failing
 * operation holds `{"error","details"}` and the following ones are `null`; when all operations succeeded
 * but the commit failed, one extra error element follows. Throws `OvsdbOperationError` for an in-band
 * error and `OVSDB_PROTOCOL` for a result that has neither shape.
 */
export function parseTransactResult(opCount: number, result: unknown): OperationResult[] {
  if (!Array.isArray(result)) throw new OvsdbError('OVSDB_PROTOCOL', 'transact: result is not an array');
  const items = result as unknown[];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (isRecord(item) && item.error !== undefined && item.error !== null) {
      const error = typeof item.error === 'string' ? item.error : JSON.stringify(item.error);
      const details = typeof item.details === 'string' ? item.details : undefined;
      throw new OvsdbOperationError(error, details, i, i >= opCount);
    }
  }
  if (items.length < opCount) {
    throw new OvsdbError('OVSDB_PROTOCOL', `transact: ${items.length} results for ${opCount} operations and no error`);
  }
  const out: OperationResult[] = [];
  for (let i = 0; i < opCount; i++) {
    const item = items[i];
    if (!isRecord(item)) throw new OvsdbError('OVSDB_PROTOCOL', `transact: result ${i} is not an object`);
    const parsed: { uuid?: string; count?: number; rows?: Record<string, unknown>[] } = {};
    if (Array.isArray(item.uuid) && item.uuid[0] === 'uuid' && typeof item.uuid[1] === 'string') parsed.uuid = item.uuid[1];
    if (typeof item.count === 'number') parsed.count = item.count;
    if (Array.isArray(item.rows)) parsed.rows = item.rows.filter(isRecord);
    out.push(parsed);
  }
  return out;
}
