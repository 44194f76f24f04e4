/**
 * Values as the simulator holds and emits them: the shapes of ocaml-rpc's `Rpc.t`
 * (mirage/ocaml-rpc src/lib/rpc.ml), so that each encoder can write what xapi writes for each.
 * A JS `number` is an API `int` (`Rpc.Int`, int64); `Double`, `DateTime` and `Int32` wrap the other
 * scalar kinds whose wire form differs. Wrappers are immutable: one instance may be shared by every
 * record that holds the same default.
 */
export class Double {
  constructor(readonly value: number) {
    Object.freeze(this);
  }
}

/** A datetime in xapi's wire form `YYYYMMDDThh:mm:ssZ` (xapi-project/xen-api ocaml/libs/clock/date.ml:104-111). */
export class DateTime {
  constructor(readonly text: string) {
    Object.freeze(this);
  }

  static of(ms: number): DateTime {
    const iso = new Date(ms).toISOString();
    return new DateTime(`${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 19)}Z`);
  }
}

/** `Rpc.Int32`: only `valid_ref_counts` of `event.from` uses it (xapi_event.ml:724-731). */
export class Int32 {
  constructor(readonly value: number) {
    Object.freeze(this);
  }
}

export type SimValue = string | number | boolean | null | Double | DateTime | Int32 | readonly SimValue[] | SimStruct;
export interface SimStruct {
  readonly [key: string]: SimValue;
}

export function isStruct(v: SimValue | undefined): v is SimStruct {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Double) && !(v instanceof DateTime) && !(v instanceof Int32);
}

/**
 * Sets an own enumerable member even for a key such as `__proto__`: map keys come from clients, and
 * a plain assignment with that key would replace the prototype instead of adding a member.
 */
export function setMember(target: Record<string, SimValue>, key: string, value: SimValue): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A decoded method call. `id`/`version` are JSON-RPC only (echoed in the answer). */
export interface SimCall {
  readonly method: string;
  readonly params: readonly SimValue[];
  readonly id?: string | number;
  readonly version?: 'V1' | 'V2';
}

/** A request body that the RPC layer cannot parse: xapi answers it with HTTP 500 (http_svr.ml:539-563). */
export class WireParseError extends Error {}

/** xapi reads at most 300 KiB of request body (xapi-project/xen-api ocaml/xapi-consts/constants.ml:421). */
export const MAX_RPC_REQUEST_BYTES = 300 * 1024;

/**
 * OCaml's `Printf "%.<p>g"`: shortest of fixed and exponent notation with `p` significant digits,
 * trailing zeros dropped, exponent with at least two digits; `inf`, `-inf`, `nan` as OCaml prints them.
 */
export function formatG(x: number, precision: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const exp = Number(x.toExponential(precision - 1).split('e')[1]);
  const strip = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= precision) {
    const [mantissa = '', e = '0'] = x.toExponential(precision - 1).split('e');
    const n = Number(e);
    return `${strip(mantissa)}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  return strip(x.toFixed(Math.max(0, precision - 1 - exp)));
}

/** A scalar field as text (refs, enums, strings, ints); '' for anything else. */
export function text(v: SimValue | undefined): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

/**
 * Encodings of frozen values (the datamodel's shared defaults), computed once per encoder: a pool's
 * records repeat the same large maps thousands of times, and the simulator must not dominate a
 * benchmark at pool scale.
 */
export function cachedEncoder(encode: (v: SimValue) => string): (v: SimValue) => string {
  const cache = new WeakMap<object, string>();
  return (v) => {
    if (typeof v !== 'object' || v === null || !Object.isFrozen(v)) return encode(v);
    let out = cache.get(v);
    if (out === undefined) cache.set(v, (out = encode(v)));
    return out;
  };
}
