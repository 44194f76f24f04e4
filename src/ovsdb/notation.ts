import { OvsdbError } from './errors.js';

/**
 * OVSDB JSON notation (RFC 7047 §5.1; docs/ovsdb.md §4). Values on the wire are decoded by the
 * column's schema type, never by shape: a bare `["uuid","…"]` is an atom, not a two-element array.
 */

export type UuidAtom = readonly ['uuid', string];
export type NamedUuidAtom = readonly ['named-uuid', string];
export type Atom = string | number | boolean | UuidAtom | NamedUuidAtom;
export type SetValue = readonly ['set', readonly Atom[]];
export type MapValue = readonly ['map', readonly (readonly [Atom, Atom])[]];
/** A column value: an atom (also a one-element set), a set or a map. */
export type Value = Atom | SetValue | MapValue;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NAMED_UUID_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

export function isUuid(text: string): boolean {
  return UUID_RE.test(text);
}

function notationError(message: string): OvsdbError {
  return new OvsdbError('OVSDB_PROTOCOL', `OVSDB notation: ${message}`);
}

export function uuid(value: string): UuidAtom {
  if (!isUuid(value)) throw notationError(`"${value}" is not a UUID`);
  return ['uuid', value];
}

/** A reference to the row an `insert` with this `uuid-name` creates in the same transaction (RFC 7047 §5.1). */
export function namedUuid(name: string): NamedUuidAtom {
  if (!NAMED_UUID_RE.test(name)) throw notationError(`"${name}" is not a valid uuid-name (RFC 7047 <id>)`);
  return ['named-uuid', name];
}

export function set(atoms: Iterable<Atom>): SetValue {
  return ['set', [...atoms]];
}

export function map(pairs: ReadonlyMap<Atom, Atom> | Iterable<readonly [Atom, Atom]> | Readonly<Record<string, string>>): MapValue {
  const entries: (readonly [Atom, Atom])[] =
    pairs instanceof Map || isIterable(pairs) ? [...(pairs as Iterable<readonly [Atom, Atom]>)] : Object.entries(pairs);
  const seen = new Set<string>();
  for (const [k] of entries) {
    const key = JSON.stringify(k);
    // ovsdb-server rejects duplicate keys ("map contains duplicate key", docs/ovsdb.md §4).
    if (seen.has(key)) throw notationError(`duplicate map key ${key}`);
    seen.add(key);
  }
  return ['map', entries];
}

/** An optional scalar (a set of 0 or 1 elements): `undefined` clears it with `["set",[]]`. */
export function optional(value: Atom | undefined): Value {
  return value === undefined ? ['set', []] : value;
}

function isIterable(value: unknown): value is Iterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.iterator in value;
}

// ---- decoding ----

export function isAtom(value: unknown): value is Atom {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return true;
    default:
      return (
        Array.isArray(value) &&
        value.length === 2 &&
        (value[0] === 'uuid' || value[0] === 'named-uuid') &&
        typeof value[1] === 'string'
      );
  }
}

/** Decodes a set-typed value, accepting the bare-atom form of a one-element set. */
export function decodeSet(value: unknown): Atom[] {
  if (Array.isArray(value) && value[0] === 'set') {
    const members: unknown = value[1];
    if (value.length !== 2 || !Array.isArray(members)) throw notationError(`malformed set ${short(value)}`);
    for (const m of members) if (!isAtom(m)) throw notationError(`set member is not an atom: ${short(m)}`);
    return members as Atom[];
  }
  if (isAtom(value)) return [value];
  throw notationError(`expected a set or an atom, got ${short(value)}`);
}

export function decodeMapPairs(value: unknown): (readonly [Atom, Atom])[] {
  if (!Array.isArray(value) || value[0] !== 'map' || value.length !== 2 || !Array.isArray(value[1])) {
    throw notationError(`expected a map, got ${short(value)}`);
  }
  const pairs = value[1] as unknown[];
  for (const p of pairs) {
    if (!Array.isArray(p) || p.length !== 2 || !isAtom(p[0]) || !isAtom(p[1])) throw notationError(`malformed map pair ${short(p)}`);
  }
  return pairs as (readonly [Atom, Atom])[];
}

/**
 * A `map<string,string>` column (`external_ids`, `other_config`). `shareValue`, when given, maps each
 * value to the copy to keep (the replica's per-batch `StringPool`).
 */
export function decodeStringMap(value: unknown, shareValue?: (value: string) => string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of decodeMapPairs(value)) {
    if (typeof k !== 'string' || typeof v !== 'string') throw notationError(`expected string pairs in map, got ${short([k, v])}`);
    out.set(internKey(k), shareValue === undefined ? v : shareValue(v));
  }
  return out;
}

/**
 * Map keys are a small vocabulary (`xs-vif-uuid`, `attached-mac`, …), but JSON.parse gives every
 * occurrence longer than 10 characters its own string: at 6000 Interface rows that was ~0.8 MB of
 * duplicate key strings held by the replica (heap snapshot, stress-2ms). One shared copy per key; the
 * table is bounded so that a peer sending ever-new keys cannot grow it without limit.
 */
const KEY_INTERN_LIMIT = 4096;
const internedKeys = new Map<string, string>();

function internKey(key: string): string {
  const known = internedKeys.get(key);
  if (known !== undefined) return known;
  if (internedKeys.size < KEY_INTERN_LIMIT) internedKeys.set(key, key);
  return key;
}

/** A `set<string>` column, or an optional string when `max` is 1. */
export function decodeStringSet(value: unknown): string[] {
  const atoms = decodeSet(value);
  for (const a of atoms) if (typeof a !== 'string') throw notationError(`expected string set members, got ${short(a)}`);
  return atoms as string[];
}

/** An optional string column (`fail_mode`, `system_type`: a set of 0..1 strings). */
export function decodeOptionalString(value: unknown): string | undefined {
  const atoms = decodeStringSet(value);
  if (atoms.length > 1) throw notationError(`expected at most one member, got ${atoms.length}`);
  return atoms[0];
}

export function decodeString(value: unknown): string {
  if (typeof value !== 'string') throw notationError(`expected a string, got ${short(value)}`);
  return value;
}

/** A `uuid` atom's text. */
export function decodeUuid(value: unknown): string {
  if (Array.isArray(value) && value.length === 2 && value[0] === 'uuid' && typeof value[1] === 'string' && isUuid(value[1])) {
    return value[1];
  }
  throw notationError(`expected a uuid atom, got ${short(value)}`);
}

function short(value: unknown): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
