import { OvsdbError, isRecord } from './errors.js';
import { decodeOptionalString, decodeString, decodeStringMap, decodeStringSet } from './notation.js';
import { StringPool } from './string-pool.js';

/**
 * How a monitored column is decoded (by schema type, never by shape: docs/ovsdb.md §4).
 * - `string`: a scalar string (`name`); missing in `initial`/`insert` means "" (the default).
 * - `optional-string`: a set of 0..1 strings (`fail_mode`, `system_type`) → `string | undefined`.
 * - `string-map`: `map<string,string>` (`external_ids`, `other_config`) → `ReadonlyMap<string,string>`.
 * - `string-set`: `set<string>` → `readonly string[]`.
 */
export type ColumnKind = 'string' | 'optional-string' | 'string-map' | 'string-set';
export type TableSpec = Readonly<Record<string, ColumnKind>>;
/** Tables to monitor and the columns of each, with their kinds. */
export type MonitorSpec = Readonly<Record<string, TableSpec>>;

/** The daemon's default monitor set (docs/design.md §2: the columns the rules read or write). */
export const DEFAULT_MONITOR_SPEC = {
  Open_vSwitch: {
    external_ids: 'string-map',
    other_config: 'string-map',
    system_type: 'optional-string',
    system_version: 'optional-string',
  },
  Bridge: { name: 'string', external_ids: 'string-map', other_config: 'string-map', fail_mode: 'optional-string' },
  Interface: { name: 'string', external_ids: 'string-map' },
} as const satisfies MonitorSpec;

export type DecodedValue = string | undefined | ReadonlyMap<string, string> | readonly string[];

/** A decoded row: `_uuid` plus one property per monitored column. Rows are immutable; a change makes a new row. */
export interface ReplicaRow {
  readonly _uuid: string;
  readonly [column: string]: DecodedValue;
}

export interface OpenVswitchRow extends ReplicaRow {
  readonly external_ids: ReadonlyMap<string, string>;
  readonly other_config: ReadonlyMap<string, string>;
  readonly system_type: string | undefined;
  readonly system_version: string | undefined;
}

export interface BridgeRow extends ReplicaRow {
  readonly name: string;
  readonly external_ids: ReadonlyMap<string, string>;
  readonly other_config: ReadonlyMap<string, string>;
  readonly fail_mode: string | undefined;
}

export interface InterfaceRow extends ReplicaRow {
  readonly name: string;
  readonly external_ids: ReadonlyMap<string, string>;
}

export type RowChange =
  | { readonly kind: 'inserted'; readonly row: ReplicaRow }
  | { readonly kind: 'modified'; readonly row: ReplicaRow; readonly old: ReplicaRow }
  /** `old` is the last known row, so consumers can unindex it. */
  | { readonly kind: 'deleted'; readonly old: ReplicaRow };

/**
 * What one update (or one full resync) changed, per table then per row uuid. `resync` is true when the
 * replica was rebuilt from a full monitor reply; rows that vanished meanwhile are reported as deleted.
 */
export interface ReplicaChange {
  readonly resync: boolean;
  readonly tables: ReadonlyMap<string, ReadonlyMap<string, RowChange>>;
}

/** Wire formats of `<table-updates>`: `update2` for monitor_cond(_since), `update` for legacy monitor. */
export type UpdateFormat = 'update2' | 'update';

type Tables = Map<string, Map<string, ReplicaRow>>;

function inconsistent(message: string): OvsdbError {
  return new OvsdbError('OVSDB_REPLICA_INCONSISTENT', `replica inconsistent: ${message}`);
}

/**
 * The in-memory copy of the monitored tables. Not exposed to readers until `ready`: the first full
 * monitor reply after each (re)connect must be applied first (docs/design.md §4.6). Updates are applied in place
 * (Maps, no per-update copies); an update that does not fit (modify/delete of a missing row, insert of an
 * existing one) throws `OVSDB_REPLICA_INCONSISTENT`, after which the owner must reconnect and resync.
 */
export class Replica {
  readonly spec: MonitorSpec;
  private tables: Tables;
  private isReady = false;
  /** Set when an update failed half-applied: the next rebuild reports every surviving row as modified. */
  private reportAll = false;

  constructor(spec: MonitorSpec = DEFAULT_MONITOR_SPEC) {
    this.spec = spec;
    this.tables = emptyTables(spec);
  }

  get ready(): boolean {
    return this.isReady;
  }

  /** The rows of one table, or undefined while the replica is not ready (or the table is not monitored). */
  table(name: 'Open_vSwitch'): ReadonlyMap<string, OpenVswitchRow> | undefined;
  table(name: 'Bridge'): ReadonlyMap<string, BridgeRow> | undefined;
  table(name: 'Interface'): ReadonlyMap<string, InterfaceRow> | undefined;
  table(name: string): ReadonlyMap<string, ReplicaRow> | undefined;
  table(name: string): ReadonlyMap<string, ReplicaRow> | undefined {
    return this.isReady ? this.tables.get(name) : undefined;
  }

  /** Row counts per table (also while not ready: the last known contents). */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, rows] of this.tables) out[name] = rows.size;
    return out;
  }

  /** Hides the replica from readers (connection lost); its contents are kept for the next diff. */
  invalidate(): void {
    this.isReady = false;
  }

  /**
   * Replaces the contents with a full monitor reply and marks the replica ready. The change lists every
   * row inserted, modified or deleted relative to what we held before (deletions computed here: rows gone
   * while we were disconnected must be reported).
   */
  rebuild(updates: unknown, format: UpdateFormat): ReplicaChange {
    const fresh = emptyTables(this.spec);
    applyTableUpdates(this.spec, fresh, updates, format, undefined, new StringPool());
    const changes = new Map<string, Map<string, RowChange>>();
    for (const [name, newRows] of fresh) {
      const oldRows = this.tables.get(name) ?? new Map<string, ReplicaRow>();
      const tableChanges = new Map<string, RowChange>();
      for (const [id, row] of newRows) {
        const old = oldRows.get(id);
        if (old === undefined) tableChanges.set(id, { kind: 'inserted', row });
        else if (this.reportAll || !rowsEqual(old, row)) tableChanges.set(id, { kind: 'modified', row, old });
      }
      for (const [id, old] of oldRows) if (!newRows.has(id)) tableChanges.set(id, { kind: 'deleted', old });
      if (tableChanges.size > 0) changes.set(name, tableChanges);
    }
    this.tables = fresh;
    this.isReady = true;
    this.reportAll = false;
    return { resync: true, tables: changes };
  }

  /**
   * Applies an incremental `<table-updates2>` (or legacy `<table-updates>`) in place. Also used for a
   * `monitor_cond_since` reply with found=true (a delta over what we hold), with `markReady`.
   * On `OVSDB_REPLICA_INCONSISTENT` the replica is left not ready: the caller must resync.
   */
  apply(updates: unknown, format: UpdateFormat, markReady = false): ReplicaChange {
    const changes = new Map<string, Map<string, RowChange>>();
    try {
      applyTableUpdates(this.spec, this.tables, updates, format, changes, new StringPool());
    } catch (err) {
      this.isReady = false;
      this.reportAll = true;
      throw err;
    }
    if (markReady) this.isReady = true;
    return { resync: false, tables: changes };
  }
}

function emptyTables(spec: MonitorSpec): Tables {
  const tables: Tables = new Map();
  for (const name of Object.keys(spec)) tables.set(name, new Map());
  return tables;
}

function applyTableUpdates(
  spec: MonitorSpec,
  tables: Tables,
  updates: unknown,
  format: UpdateFormat,
  changes: Map<string, Map<string, RowChange>> | undefined,
  pool: StringPool,
): void {
  if (!isRecord(updates)) throw new OvsdbError('OVSDB_PROTOCOL', 'table updates are not a JSON object');
  for (const [tableName, rowUpdates] of Object.entries(updates)) {
    const tableSpec = spec[tableName];
    const rows = tables.get(tableName);
    if (tableSpec === undefined || rows === undefined) continue; // not monitored by us
    if (!isRecord(rowUpdates)) throw new OvsdbError('OVSDB_PROTOCOL', `updates for table ${tableName} are not an object`);
    let tableChanges = changes?.get(tableName);
    for (const [id, rowUpdate] of Object.entries(rowUpdates)) {
      if (!isRecord(rowUpdate)) throw new OvsdbError('OVSDB_PROTOCOL', `update for ${tableName} row ${id} is not an object`);
      const change =
        format === 'update2' ? applyRowUpdate2(tableSpec, rows, tableName, id, rowUpdate, pool) : applyRowUpdate1(tableSpec, rows, tableName, id, rowUpdate, pool);
      if (changes !== undefined) {
        if (tableChanges === undefined) {
          tableChanges = new Map();
          changes.set(tableName, tableChanges);
        }
        tableChanges.set(id, mergeChange(tableChanges.get(id), change));
      }
    }
  }
}

/** Two changes to one row within one batch: keep the first `old` and the last `row`. */
function mergeChange(first: RowChange | undefined, next: RowChange): RowChange {
  if (first === undefined) return next;
  if (first.kind === 'inserted') return next.kind === 'deleted' ? next : { kind: 'inserted', row: next.row };
  const old = first.old;
  if (next.kind === 'deleted') return { kind: 'deleted', old };
  return { kind: 'modified', row: next.row, old };
}

/** ovsdb-server(7) §4.1.14 row update: exactly one of initial, insert, delete, modify. */
function applyRowUpdate2(spec: TableSpec, rows: Map<string, ReplicaRow>, table: string, id: string, update: Record<string, unknown>, pool: StringPool): RowChange {
  const fresh = update.initial ?? update.insert;
  if (fresh !== undefined) {
    if (rows.has(id)) throw inconsistent(`insert of ${table} row ${id}, which already exists`);
    const row = decodeFullRow(spec, id, fresh, table, pool);
    rows.set(id, row);
    return { kind: 'inserted', row };
  }
  if ('delete' in update) {
    const old = rows.get(id);
    if (old === undefined) throw inconsistent(`delete of ${table} row ${id}, which does not exist`);
    rows.delete(id);
    return { kind: 'deleted', old };
  }
  if (update.modify !== undefined) {
    const old = rows.get(id);
    if (old === undefined) throw inconsistent(`modify of ${table} row ${id}, which does not exist`);
    const row = applyDiff(spec, old, update.modify, table, pool);
    rows.set(id, row);
    return { kind: 'modified', row, old };
  }
  throw new OvsdbError('OVSDB_PROTOCOL', `update2 for ${table} row ${id} has none of initial/insert/delete/modify`);
}

/** RFC 7047 §4.1.6 `<row-update>`: `old` and/or `new`; `new` holds every monitored column. */
function applyRowUpdate1(spec: TableSpec, rows: Map<string, ReplicaRow>, table: string, id: string, update: Record<string, unknown>, pool: StringPool): RowChange {
  const next = update.new;
  const old = rows.get(id);
  if (next === undefined || next === null) {
    if (old === undefined) throw inconsistent(`delete of ${table} row ${id}, which does not exist`);
    rows.delete(id);
    return { kind: 'deleted', old };
  }
  const row = decodeFullRow(spec, id, next, table, pool);
  const isInsert = update.old === undefined || update.old === null;
  if (isInsert) {
    if (old !== undefined) throw inconsistent(`insert of ${table} row ${id}, which already exists`);
    rows.set(id, row);
    return { kind: 'inserted', row };
  }
  if (old === undefined) throw inconsistent(`modify of ${table} row ${id}, which does not exist`);
  rows.set(id, row);
  return { kind: 'modified', row, old };
}

function defaultValue(kind: ColumnKind): DecodedValue {
  switch (kind) {
    case 'string':
      return '';
    case 'optional-string':
      return undefined;
    case 'string-map':
      return new Map<string, string>();
    case 'string-set':
      return [];
  }
}

function decodeColumn(kind: ColumnKind, value: unknown, pool: StringPool): DecodedValue {
  switch (kind) {
    case 'string':
      return decodeString(value);
    case 'optional-string':
      return decodeOptionalString(value);
    case 'string-map':
      return decodeStringMap(value, (v) => pool.intern(v));
    case 'string-set':
      return decodeStringSet(value);
  }
}

/** `initial`/`insert` omit default-valued columns (docs/ovsdb.md §2): missing means default. */
function decodeFullRow(spec: TableSpec, id: string, value: unknown, table: string, pool: StringPool): ReplicaRow {
  if (!isRecord(value)) throw new OvsdbError('OVSDB_PROTOCOL', `${table} row ${id} is not an object`);
  const row: Record<string, DecodedValue> = { _uuid: id };
  for (const [column, kind] of Object.entries(spec)) {
    const wire = value[column];
    row[column] = wire === undefined ? defaultValue(kind) : decodeColumn(kind, wire, pool);
  }
  return row as ReplicaRow;
}

/**
 * `modify` diff (ovsdb-server(7) §4.1.14, docs/ovsdb.md §2): a scalar or optional (0..1) column
 * carries the new value; a set column (max > 1) the symmetric difference; a map column toggles: a missing key is added, a key with the
 * same value is removed, a key with another value takes it. Applying the same diff twice undoes it, so
 * each diff must be applied exactly once, against the previous value.
 */
function applyDiff(spec: TableSpec, old: ReplicaRow, diff: unknown, table: string, pool: StringPool): ReplicaRow {
  if (!isRecord(diff)) throw new OvsdbError('OVSDB_PROTOCOL', `modify for ${table} row ${old._uuid} is not an object`);
  const row: Record<string, DecodedValue> = { ...old };
  for (const [column, wire] of Object.entries(diff)) {
    const kind = spec[column];
    if (kind === undefined) continue;
    switch (kind) {
      case 'string':
        row[column] = decodeString(wire);
        break;
      case 'optional-string':
        // A set with max 1 is not a "set" for diffs: ovsdb-server sends the new value whole, `["set",[]]`
        // when cleared (ovsdb-monitor.c diffs only types with n_max > 1; observed on 3.1).
        row[column] = decodeOptionalString(wire);
        break;
      case 'string-set':
        row[column] = toggleSet(old[column] as readonly string[], decodeStringSet(wire));
        break;
      case 'string-map': {
        const previous = old[column] as ReadonlyMap<string, string>;
        const next = new Map(previous);
        // A value written next to an equal one (iface-id beside xs-vif-uuid) keeps the row's copy.
        for (const [k, v] of decodeStringMap(wire, (value) => pool.intern(value, previous))) {
          const current = next.get(k);
          if (current === undefined) next.set(k, v);
          else if (current === v) next.delete(k);
          else next.set(k, v);
        }
        row[column] = next;
        break;
      }
    }
  }
  return row as ReplicaRow;
}

function toggleSet(prev: readonly string[], diff: readonly string[]): string[] {
  const out = new Set(prev);
  for (const member of diff) {
    if (out.has(member)) out.delete(member);
    else out.add(member);
  }
  return [...out];
}

function valuesEqual(a: DecodedValue, b: DecodedValue): boolean {
  if (a === b) return true;
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (b.get(k) !== v) return false;
    return true;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    const bs = new Set<string>(b as readonly string[]);
    return (a as readonly string[]).every((x) => bs.has(x));
  }
  return false;
}

function rowsEqual(a: ReplicaRow, b: ReplicaRow): boolean {
  for (const column of Object.keys(b)) if (!valuesEqual(a[column], b[column])) return false;
  return true;
}
