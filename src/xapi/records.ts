import type { XapiStruct, XapiValue } from './codec/types.js';
import { XapiTransportError } from './errors.js';

/*
 * Typed records holding only the fields the daemon uses (docs/xapi.md §6). Values are
 * normalised from either codec: XML-RPC sends API ints as bare strings and bools as `<boolean>`
 * (§2), JSON-RPC as numbers and booleans (§3). A record missing a field or holding the wrong shape
 * is a protocol error naming the class, ref and field.
 */

export type OtherConfig = Readonly<Record<string, string>>;

export interface NetworkRecord {
  readonly ref: string;
  readonly uuid: string;
  readonly bridge: string;
  readonly otherConfig: OtherConfig;
}

export interface VifRecord {
  readonly ref: string;
  readonly uuid: string;
  readonly device: string;
  readonly MAC: string;
  /** VM ref. */
  readonly VM: string;
  /** network ref. */
  readonly network: string;
  readonly otherConfig: OtherConfig;
}

export interface VmRecord {
  readonly ref: string;
  readonly uuid: string;
  /** host ref; `OpaqueRef:NULL` when not resident (§6). */
  readonly residentOn: string;
  /** `-1` when halted (§6). */
  readonly domid: number;
  readonly isControlDomain: boolean;
  readonly otherConfig: OtherConfig;
}

export interface PoolRecord {
  readonly ref: string;
  readonly uuid: string;
  /** host ref. */
  readonly master: string;
  readonly otherConfig: OtherConfig;
}

export interface HostRecord {
  readonly ref: string;
  readonly uuid: string;
  readonly hostname: string;
  readonly softwareVersion: OtherConfig;
  readonly otherConfig: OtherConfig;
}

export const NULL_REF = 'OpaqueRef:NULL';

function malformed(what: string, detail: string): XapiTransportError {
  return new XapiTransportError('XAPI_PROTOCOL', `malformed ${what}: ${detail}`);
}

function isStruct(v: XapiValue | undefined): v is XapiStruct {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class FieldReader {
  constructor(
    private readonly what: string,
    private readonly record: XapiStruct,
  ) {}

  private field(name: string): XapiValue {
    const v = Object.hasOwn(this.record, name) ? this.record[name] : undefined;
    if (v === undefined) throw malformed(this.what, `missing field "${name}"`);
    return v;
  }

  string(name: string): string {
    const v = this.field(name);
    if (typeof v !== 'string') throw malformed(this.what, `field "${name}" is not a string`);
    return v;
  }

  /** API int: a decimal string over XML-RPC, a number over JSON-RPC. */
  int(name: string): number {
    const v = this.field(name);
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : Number.NaN;
    if (!Number.isSafeInteger(n)) throw malformed(this.what, `field "${name}" is not an integer`);
    return n;
  }

  /** API bool: `<boolean>` decodes to a boolean; tolerate the DB string forms too (§6 filter notes). */
  bool(name: string): boolean {
    const v = this.field(name);
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === '1' || v === 1) return true;
    if (v === 'false' || v === '0' || v === 0) return false;
    throw malformed(this.what, `field "${name}" is not a boolean`);
  }

  /** `read(name)`, or `undefined` when the field is missing or malformed. */
  optional<T>(name: string, read: (name: string) => T): T | undefined {
    try {
      return read(name);
    } catch {
      return undefined;
    }
  }

  /** A set of refs: an array of strings. */
  refs(name: string): readonly string[] {
    const v = this.field(name);
    if (!Array.isArray(v) || !(v as readonly XapiValue[]).every((e) => typeof e === 'string')) throw malformed(this.what, `field "${name}" is not a set of refs`);
    return v as readonly string[];
  }

  map(name: string): OtherConfig {
    const v = this.field(name);
    if (!isStruct(v)) throw malformed(this.what, `field "${name}" is not a map`);
    // Most other_config maps are empty: share one frozen object. A fresh Object.create(null) is a
    // dictionary-mode object (~190 B with its backing store) and CacheXapiView makes a Map per distinct
    // object, so at 5000 VIFs+VMs this kept ~1.9 MB live (heap snapshot, stress-2ms).
    if (Object.keys(v).length === 0) return EMPTY_MAP_FIELD;
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, value] of Object.entries(v)) {
      if (typeof value !== 'string') throw malformed(this.what, `field "${name}" key "${k}" is not a string`);
      out[k] = value;
    }
    return out;
  }
}

/** The value of every empty map field (shared; records are read-only). */
const EMPTY_MAP_FIELD: OtherConfig = Object.freeze(Object.create(null) as Record<string, string>);

function reader(cls: string, ref: string, value: XapiValue): FieldReader {
  const what = `${cls} record ${ref}`;
  if (!isStruct(value)) throw malformed(what, 'not a struct');
  return new FieldReader(what, value);
}

export function parseNetwork(ref: string, value: XapiValue): NetworkRecord {
  const r = reader('network', ref, value);
  return { ref, uuid: r.string('uuid'), bridge: r.string('bridge'), otherConfig: r.map('other_config') };
}

export function parseVif(ref: string, value: XapiValue): VifRecord {
  const r = reader('VIF', ref, value);
  return {
    ref,
    uuid: r.string('uuid'),
    device: r.string('device'),
    MAC: r.string('MAC'),
    VM: r.string('VM'),
    network: r.string('network'),
    otherConfig: r.map('other_config'),
  };
}

export function parseVm(ref: string, value: XapiValue): VmRecord {
  const r = reader('VM', ref, value);
  return {
    ref,
    uuid: r.string('uuid'),
    residentOn: r.string('resident_on'),
    domid: r.int('domid'),
    isControlDomain: r.bool('is_control_domain'),
    otherConfig: r.map('other_config'),
  };
}

export function parsePool(ref: string, value: XapiValue): PoolRecord {
  const r = reader('pool', ref, value);
  return { ref, uuid: r.string('uuid'), master: r.string('master'), otherConfig: r.map('other_config') };
}

export function parseHost(ref: string, value: XapiValue): HostRecord {
  const r = reader('host', ref, value);
  return {
    ref,
    uuid: r.string('uuid'),
    hostname: r.string('hostname'),
    softwareVersion: r.map('software_version'),
    otherConfig: r.map('other_config'),
  };
}

/**
 * What a host record says about the VMs placed on it: `resident_VMs` (the inverse of
 * `VM.resident_on`, so a VM becoming resident modifies the host: docs/xapi.md §5.3) and the task refs of
 * `current_operations` entries that place a VM here (`vm_start`, `vm_resume`, `vm_migrate`: XAPI adds
 * them when it reserves the host for a VM, before the VM's VIFs are plugged).
 */
export interface HostPlacement {
  // Only an optimisation rests on these (anticipating ports): a record lacking them, or holding
  // them in another shape, reads as "nothing placed" rather than failing the host record.
  readonly residentVms: readonly string[];
  readonly placingTasks: readonly string[];
}

const PLACING_OPERATIONS: ReadonlySet<string> = new Set(['vm_start', 'vm_resume', 'vm_migrate']);

export function parseHostPlacement(ref: string, value: XapiValue): HostPlacement {
  const r = reader('host', ref, value);
  const operations = r.optional('current_operations', (name) => r.map(name)) ?? EMPTY_MAP_FIELD;
  return {
    residentVms: r.optional('resident_VMs', (name) => r.refs(name)) ?? [],
    placingTasks: Object.keys(operations).filter((task) => PLACING_OPERATIONS.has(operations[task] ?? '')),
  };
}

/** A VM record's `VIFs` (ref set). */
export function parseVmVifRefs(ref: string, value: XapiValue): readonly string[] {
  const r = reader('VM', ref, value);
  return r.optional('VIFs', (name) => r.refs(name)) ?? [];
}

/** How many refs a record's ref-set field holds; 0 when it is missing or not a set. */
export function refCount(value: XapiValue | undefined, field: string): number {
  if (!isStruct(value) || !Object.hasOwn(value, field)) return 0;
  const v = value[field];
  return Array.isArray(v) ? v.length : 0;
}

/** A `get_all_records[_where]` answer (map ref → record) as typed records. */
export function parseRecordMap<R>(cls: string, value: XapiValue, parse: (ref: string, v: XapiValue) => R): R[] {
  if (!isStruct(value)) throw malformed(`${cls}.get_all_records answer`, 'not a map of ref to record');
  return Object.entries(value).map(([ref, v]) => parse(ref, v));
}

/** A reply that must be a ref (`get_this_host`, `event.inject`'s token is a plain string too). */
export function expectString(value: XapiValue, what: string): string {
  if (typeof value !== 'string') throw malformed(what, 'not a string');
  return value;
}

/** Structural equality of two typed records (flat fields and string maps only). */
export function sameRecord<R extends object>(a: R, b: R): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const va = (a as Record<string, unknown>)[k];
    const vb = (b as Record<string, unknown>)[k];
    if (typeof va === 'object' && va !== null && typeof vb === 'object' && vb !== null) {
      const ea = Object.keys(va);
      if (ea.length !== Object.keys(vb).length) return false;
      for (const e of ea) if ((va as Record<string, unknown>)[e] !== (vb as Record<string, unknown>)[e]) return false;
    } else if (va !== vb) return false;
  }
  return true;
}
