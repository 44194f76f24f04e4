import { CodedError } from '../errors.js';
import { relatedRef, SCHEMAS, VIF_ATTACHED_OPERATIONS, VIF_DETACHED_OPERATIONS, VM_RUNNING_FIELDS } from './datamodel/index.js';
import { NULL_REF, type IdSource } from './ids.js';
import { MissingField, type ColumnLookup } from './where.js';
import { isStruct, setMember, text, type SimStruct, type SimValue } from './wire/values.js';

/**
 * The simulator's database: the five XAPI classes the daemon reads, rows as wide as xapi's
 * datamodel (./datamodel), with xapi's generation bookkeeping: every row carries the generation at
 * which it was created and last modified, deleted rows a bounded queue per table, so `event.from`
 * can classify add/mod/del and coalesce exactly as xapi does (docs/xapi.md §5.1).
 */

/** Datamodel class names, as used in method names, table names and UUID_INVALID/HANDLE_INVALID. */
export type SimClass = 'pool' | 'host' | 'network' | 'VIF' | 'VM';
export const SIM_CLASSES: readonly SimClass[] = ['pool', 'host', 'network', 'VIF', 'VM'];

/** Thrown by state mutations given bad input (unknown object, invalid key). */
export class SimStateError extends CodedError<'SIM_STATE'> {
  constructor(message: string) {
    super('SIM_STATE', message);
  }
}

export interface SimRow {
  readonly cls: SimClass;
  readonly ref: string;
  readonly uuid: string;
  /** The fields this row holds itself; every other public field reads the class default (./datamodel). */
  readonly fields: Record<string, SimValue>;
  created: number;
  modified: number;
}

export interface Tombstone {
  readonly cls: SimClass;
  readonly ref: string;
  readonly created: number;
  readonly deleted: number;
}

export type StringMap = Readonly<Record<string, string>>;

/**
 * The database refuses strings that are not valid XML character data (`is_valid`,
 * xapi-project/xen-api ocaml/database/db_cache_impl.ml:86-96): C0 controls other than TAB, LF, CR.
 * `<` and `&` are accepted, so a map key may hold them, and the XML-RPC reply then carries them raw.
 */
export function checkMapKey(key: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(key)) throw new SimStateError(`map key ${JSON.stringify(key)} contains a control character`);
}

export function toStruct(map: StringMap | undefined): Record<string, SimValue> {
  const out: Record<string, SimValue> = {};
  for (const [k, v] of Object.entries(map ?? {})) {
    checkMapKey(k);
    if (typeof v !== 'string') throw new SimStateError(`map value for ${JSON.stringify(k)} must be a string`);
    setMember(out, k, v);
  }
  return out;
}

/** DB columns of internal-only fields (absent from records, visible to filters), with their values. */
const INTERNAL_COLUMNS: Readonly<Partial<Record<SimClass, Readonly<Record<string, SimValue>>>>> = {
  VM: { recommended_guidances: [] },
  VIF: { reserved: false, reserved_pci: NULL_REF },
  host: { boot_free_mem: 0 },
  pool: { wlb_password: NULL_REF },
};

/** Deleted rows kept per table: 512 at most, cut back to 256 (db_cache_types.ml:239-258). */
const DELETED_UPPER = 512;
const DELETED_LOWER = 256;




export function refsOf(index: Map<string, Set<string>>, key: string): string[] {
  return [...(index.get(key) ?? [])];
}

export function link(index: Map<string, Set<string>>, key: string, ref: string): void {
  let set = index.get(key);
  if (set === undefined) index.set(key, (set = new Set()));
  set.add(ref);
}

export class SimStore {
  /** Generation of the last write (xapi's manifest generation is one more). */
  private gen = 0;
  private readonly rows = new Map<SimClass, Map<string, SimRow>>(SIM_CLASSES.map((c) => [c, new Map()]));
  private readonly byUuid = new Map<string, SimRow>();
  private readonly deleted = new Map<SimClass, Tombstone[]>(SIM_CLASSES.map((c) => [c, []]));
  private readonly listeners = new Set<() => void>();
  /** The one-to-many ref sets xapi keeps (VM.VIFs, network.VIFs, host.resident_VMs). */
  protected readonly vifsByVm = new Map<string, Set<string>>();
  protected readonly vifsByNetwork = new Map<string, Set<string>>();
  protected readonly vmsByHost = new Map<string, Set<string>>();

  constructor(readonly ids: IdSource) {}

  get generation(): number {
    return this.gen;
  }

  /** Registers a change listener (event.from waiters); returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Wakes waiters without a DB change (e.g. sessions invalidated). */
  notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** A new generation for the next write. */
  bump(): number {
    this.gen += 1;
    return this.gen;
  }

  protected insert(cls: SimClass, uuid: string | undefined, fields: Record<string, SimValue>): SimRow {
    const id = uuid ?? this.ids.uuid();
    if (this.byUuid.has(id)) throw new SimStateError(`uuid ${id} already exists`);
    const g = this.bump();
    const row: SimRow = { cls, ref: this.ids.ref(), uuid: id, fields: { uuid: id, ...fields }, created: g, modified: g };
    this.rows.get(cls)?.set(row.ref, row);
    this.byUuid.set(id, row);
    return row;
  }

  /** Marks a row modified at generation `g` (default: a new one). */
  touchRow(row: SimRow, g = this.bump()): void {
    row.modified = g;
  }

  protected remove(row: SimRow): void {
    const g = this.bump();
    this.rows.get(row.cls)?.delete(row.ref);
    this.byUuid.delete(row.uuid);
    const queue = this.deleted.get(row.cls) ?? [];
    if (queue.length + 1 >= DELETED_UPPER) queue.splice(0, queue.length - DELETED_LOWER);
    queue.push({ cls: row.cls, ref: row.ref, created: row.created, deleted: g });
    this.deleted.set(row.cls, queue);
  }

  // ------------------------------------------------------------------ lookups

  all(cls: SimClass): SimRow[] {
    return [...(this.rows.get(cls)?.values() ?? [])];
  }

  count(cls: SimClass): number {
    return this.rows.get(cls)?.size ?? 0;
  }

  byRef(cls: SimClass, ref: string): SimRow | undefined {
    return this.rows.get(cls)?.get(ref);
  }

  findByUuid(cls: SimClass, uuid: string): SimRow | undefined {
    const row = this.byUuid.get(uuid);
    return row?.cls === cls ? row : undefined;
  }

  /** Deleted rows of every table still in the queues, deleted after `generation`. */
  deletedSince(generation: number): readonly Tombstone[] {
    return SIM_CLASSES.flatMap((c) => this.deletions(c, generation));
  }

  /** One table's remembered deletions after `generation` (at most 511 are remembered). */
  deletions(cls: SimClass, generation: number): readonly Tombstone[] {
    return (this.deleted.get(cls) ?? []).filter((t) => t.deleted > generation);
  }

  /** Resolves a ref, a uuid or (network only) a bridge name; throws SimStateError. */
  resolve(cls: SimClass, id: string): SimRow {
    const row = this.byRef(cls, id) ?? this.findByUuid(cls, id) ?? (cls === 'network' ? this.all('network').find((n) => n.fields.bridge === id) : undefined);
    if (row === undefined) throw new SimStateError(`no ${cls} ${JSON.stringify(id)}`);
    return row;
  }

  /** The value of one public field: the row's own, a derived one, or the class default. */
  field(row: SimRow, name: string): SimValue | undefined {
    if (Object.hasOwn(row.fields, name)) return row.fields[name];
    return this.derived(row, name) ?? SCHEMAS[row.cls].defaults[name];
  }

  /** Fields computed from other rows or from the row's state, never stored. */
  private derived(row: SimRow, name: string): SimValue | undefined {
    const f = row.fields;
    switch (`${row.cls}.${name}`) {
      case 'VM.VIFs':
        return refsOf(this.vifsByVm, row.ref);
      case 'network.VIFs':
        return refsOf(this.vifsByNetwork, row.ref);
      case 'host.resident_VMs':
        return refsOf(this.vmsByHost, row.ref);
      case 'host.control_domain':
        return refsOf(this.vmsByHost, row.ref).find((r) => this.byRef('VM', r)?.fields.is_control_domain === true) ?? NULL_REF;
      case 'host.metrics':
      case 'VM.metrics':
        return relatedRef(row.ref, 1);
      case 'VM.guest_metrics':
        return f.power_state === 'Running' ? relatedRef(row.ref, 2) : NULL_REF;
      case 'VM.consoles':
        return f.power_state === 'Running' ? [relatedRef(row.ref, 3)] : [];
      case 'VM.VBDs':
        return f.is_control_domain === true ? [] : [relatedRef(row.ref, 4), relatedRef(row.ref, 5)];
      case 'VM.allowed_operations':
      case 'VM.domarch':
      case 'VM.last_boot_CPU_flags':
        return f.power_state === 'Running' ? VM_RUNNING_FIELDS[name as keyof typeof VM_RUNNING_FIELDS] : undefined;
      case 'VIF.allowed_operations':
        return f.currently_attached === true ? VIF_ATTACHED_OPERATIONS : VIF_DETACHED_OPERATIONS;
      default:
        return undefined;
    }
  }

  /** The full record as `get_record` and event snapshots carry it: every public field, datamodel order. */
  record(row: SimRow): SimStruct {
    const out: Record<string, SimValue> = {};
    for (const name of SCHEMAS[row.cls].fields) out[name] = this.field(row, name) ?? '';
    return out;
  }

  /**
   * A row as `get_all_records_where` sees it (db_cache_impl.ml:318-334): DB column → value, internal
   * columns included; a column the table lacks throws {@link MissingField}.
   */
  columns(row: SimRow): ColumnLookup {
    const schema = SCHEMAS[row.cls];
    const internal = INTERNAL_COLUMNS[row.cls] ?? {};
    return (column) => {
      if (Object.hasOwn(internal, column)) return Object.hasOwn(row.fields, column) ? (row.fields[column] ?? '') : (internal[column] ?? '');
      const name = column.replace(/__/g, '_');
      const known = schema.defaults[name] !== undefined && schema.namespaced.has(name) === column.includes('__');
      if (!known) throw new MissingField(column);
      return this.field(row, name) ?? '';
    };
  }

  /** The row as a struct of DB columns (internal ones included); `fields` is kept for compatibility. */
  dbRow(row: SimRow, _fields?: ReadonlySet<string>): SimStruct {
    return { ...this.record(row), ...(INTERNAL_COLUMNS[row.cls] ?? {}), ...row.fields };
  }

  /** A mutable copy of one map field held by the row itself (defaults are shared and frozen). */
  ownMap(row: SimRow, name: string): Record<string, SimValue> {
    const current = row.fields[name];
    if (Object.hasOwn(row.fields, name) && isStruct(current)) return current;
    const copy: Record<string, SimValue> = {};
    const from = this.field(row, name);
    if (isStruct(from)) for (const [k, v] of Object.entries(from)) setMember(copy, k, v);
    row.fields[name] = copy;
    return copy;
  }

  /** Writes fields of one row as one database write (one generation), keeping the ref-set indexes. */
  setFields(row: SimRow, patch: Readonly<Record<string, SimValue>>, g = this.bump()): number {
    for (const [name, value] of Object.entries(patch)) {
      if (row.cls === 'VM' && name === 'resident_on') this.moveVm(row, value, g);
      row.fields[name] = value;
    }
    this.touchRow(row, g);
    return g;
  }

  private moveVm(vm: SimRow, to: SimValue, g: number): void {
    const from = vm.fields.resident_on;
    if (from === to) return;
    // host.resident_VMs is a one-to-many set: both hosts are modified (eventgen.ml).
    for (const h of [from, to]) {
      const host = typeof h === 'string' ? this.byRef('host', h) : undefined;
      if (host !== undefined) this.touchRow(host, g);
    }
    if (typeof from === 'string') this.vmsByHost.get(from)?.delete(vm.ref);
    if (typeof to === 'string' && to !== NULL_REF) link(this.vmsByHost, to, vm.ref);
  }

  // ------------------------------------------------------------------ pool

  masterRef(): string {
    const pool = this.all('pool')[0];
    return typeof pool?.fields.master === 'string' ? pool.fields.master : NULL_REF;
  }

  /** `Pool_role.get_master_address` (xapi_session.ml:1001): the master's `host.address`. */
  masterAddress(): string {
    const master = this.byRef('host', this.masterRef());
    return master === undefined ? '' : text(this.field(master, 'address'));
  }

  /** A new master (designate_new_master / emergency transition): pool.master changes. */
  setMaster(hostId: string): void {
    const host = this.resolve('host', hostId);
    const pool = this.all('pool')[0];
    if (pool === undefined) throw new SimStateError('no pool');
    this.setFields(pool, { master: host.ref });
    this.notify();
  }

  setHostAddress(hostId: string, address: string): void {
    this.setFields(this.resolve('host', hostId), { address });
    this.notify();
  }

  /**
   * xapi restarted on an older database: the generation goes back by `generations`; rows and
   * deletions newer than that are stamped back to it.
   */
  rewind(generations: number): void {
    this.gen = Math.max(0, this.gen - Math.max(0, generations));
    for (const table of this.rows.values()) {
      for (const row of table.values()) {
        row.created = Math.min(row.created, this.gen);
        row.modified = Math.min(row.modified, this.gen);
      }
    }
    for (const [cls, queue] of this.deleted) this.deleted.set(cls, queue.filter((t) => t.deleted <= this.gen));
    this.notify();
  }
}
