import type { XapiStruct, XapiValue } from './types.js';

/**
 * Sets an own, enumerable data property even for keys like `__proto__`, `constructor` or
 * `toString`: a peer controls struct member names and map keys, and a plain `obj[key] = v` with
 * key `__proto__` would replace the object's prototype instead of adding a member
 * (prototype pollution).
 */
export function defineMember(target: Record<string, XapiValue>, key: string, value: XapiValue): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A fresh struct built from `[key, value]` pairs with {@link defineMember} semantics. */
export function structFromEntries(entries: Iterable<readonly [string, XapiValue]>): XapiStruct {
  const out: Record<string, XapiValue> = {};
  for (const [key, value] of entries) defineMember(out, key, value);
  return out;
}
