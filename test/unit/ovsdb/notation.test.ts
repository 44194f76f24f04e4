import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  decodeOptionalString,
  decodeSet,
  decodeStringMap,
  decodeStringSet,
  decodeUuid,
  map,
  namedUuid,
  optional,
  set,
  uuid,
} from '../../../src/ovsdb/notation.js';

const roundTrip = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('notation', () => {
  test('string maps round-trip through the wire form', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.string()), (record) => {
        const wire = roundTrip(map(record));
        expect(decodeStringMap(wire)).toEqual(new Map(Object.entries(record)));
        expect(decodeStringMap(roundTrip(map(new Map(Object.entries(record)))))).toEqual(new Map(Object.entries(record)));
      }),
    );
  });

  test('string sets round-trip; a one-element set may be a bare atom', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string()), (members) => {
        expect(decodeStringSet(roundTrip(set(members)))).toEqual(members);
      }),
    );
    expect(decodeStringSet('only')).toEqual(['only']);
    expect(decodeSet(['uuid', '470089ff-a66c-4e0d-af9f-a5f770bf3723'])).toEqual([['uuid', '470089ff-a66c-4e0d-af9f-a5f770bf3723']]);
  });

  test('optional values: undefined ↔ ["set",[]], value ↔ bare atom', () => {
    expect(optional(undefined)).toEqual(['set', []]);
    expect(optional('secure')).toBe('secure');
    expect(decodeOptionalString(['set', []])).toBeUndefined();
    expect(decodeOptionalString('secure')).toBe('secure');
    expect(decodeOptionalString(['set', ['secure']])).toBe('secure');
    expect(() => decodeOptionalString(['set', ['a', 'b']])).toThrow(/at most one/);
  });

  test('uuids and named uuids', () => {
    fc.assert(
      fc.property(fc.uuid(), (u) => {
        expect(decodeUuid(roundTrip(uuid(u)))).toBe(u);
      }),
    );
    expect(() => uuid('not-a-uuid')).toThrow(/not a UUID/);
    expect(namedUuid('row_1')).toEqual(['named-uuid', 'row_1']);
    expect(() => namedUuid('1bad')).toThrow(/uuid-name/);
  });

  test.each([
    ['map with non-string value', () => decodeStringMap(['map', [['k', 1]]])],
    ['map that is a set', () => decodeStringMap(['set', []])],
    ['map with a bad pair', () => decodeStringMap(['map', [['k']]])],
    ['set member not an atom', () => decodeSet(['set', [{ a: 1 }]])],
    ['object as set', () => decodeSet({})],
    ['duplicate map key', () => map([['a', '1'], ['a', '2']])],
  ])('%s → OVSDB_PROTOCOL', (_name, fn) => {
    expect(fn).toThrow(expect.objectContaining({ code: 'OVSDB_PROTOCOL' }) as Error);
  });
});
