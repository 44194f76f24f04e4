import { DateTime, Double, type SimStruct, type SimValue } from '../wire/values.js';

/**
 * One class as xapi's datamodel declares it (xapi-project/xen-api ocaml/idl/datamodel*.ml): every
 * public field in declaration order with a realistic default. Defaults are shared, frozen values:
 * a row stores only what differs (its own `fields`), so 8000 VMs of ~100 fields cost little memory.
 */
export interface ClassSchema {
  /** Public API fields in datamodel order (`~internal_only:true` fields are left out). */
  readonly fields: readonly string[];
  /** Default wire value per field (shared by every row). */
  readonly defaults: Readonly<Record<string, SimValue>>;
  /**
   * Fields inside a datamodel `namespace`: the API joins with `_` (`name_label`), the DB column with
   * `__` (`name__label`; ocaml/idl/escaping.ml:16, ocaml/database/db_names.ml:26).
   */
  readonly namespaced: ReadonlySet<string>;
}

/** Field name → default, in order; `ns:` prefixes mark namespaced fields. */
export function schema(entries: readonly (readonly [string, SimValue])[]): ClassSchema {
  const fields: string[] = [];
  const defaults: Record<string, SimValue> = {};
  const namespaced = new Set<string>();
  for (const [spec, value] of entries) {
    const ns = spec.startsWith('ns:');
    const name = ns ? spec.slice(3) : spec;
    fields.push(name);
    defaults[name] = deepFreeze(value);
    if (ns) namespaced.add(name);
  }
  return { fields: Object.freeze(fields), defaults: Object.freeze(defaults), namespaced };
}

function deepFreeze(v: SimValue): SimValue {
  if (typeof v === 'object' && v !== null && !(v instanceof Double) && !(v instanceof DateTime)) {
    for (const e of Array.isArray(v) ? (v as readonly SimValue[]) : Object.values(v as SimStruct)) deepFreeze(e);
    Object.freeze(v);
  }
  return v;
}

export const NULL = 'OpaqueRef:NULL';
/** `Date.epoch` (xapi-project/xen-api ocaml/libs/clock/date.ml) in wire form. */
export const EPOCH = new DateTime('19700101T00:00:00Z');
export const EMPTY_MAP: SimStruct = Object.freeze({});
export const EMPTY_SET: readonly SimValue[] = Object.freeze([]);

/** `name_label` and `name_description` (datamodel_common.ml `names`). */
export const NAMES: readonly (readonly [string, SimValue])[] = [
  ['ns:name_label', ''],
  ['ns:name_description', ''],
];

/**
 * A stable per-row reference for a related object the simulator does not model (metrics, consoles,
 * VBDs): derived from the row's own ref, so it costs no memory and never changes.
 */
export function relatedRef(ref: string, salt: number): string {
  const hex = ref.slice('OpaqueRef:'.length, 'OpaqueRef:'.length + 8);
  const n = (Number.parseInt(hex, 16) ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0;
  return `OpaqueRef:${n.toString(16).padStart(8, '0')}${ref.slice('OpaqueRef:'.length + 8)}`;
}
