import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { OvsdbError } from '../../../src/ovsdb/errors.js';
import { JsonMessageSplitter } from '../../../src/ovsdb/framing.js';

function cut(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function errorOf(fn: () => unknown): OvsdbError {
  try {
    fn();
  } catch (err) {
    if (err instanceof OvsdbError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

// Objects whose strings include multi-byte UTF-8, escapes and structural characters.
const trickyString = fc.oneof(fc.string({ unit: 'grapheme' }), fc.constantFrom('{', '}', '[', ']', '"', '\\', '\\"', '€😀', '\u0000\n\t'));
const message = fc.dictionary(trickyString, fc.jsonValue());

describe('JsonMessageSplitter', () => {
  test('any sequence of objects, cut anywhere (inside UTF-8 and escapes), is reassembled exactly', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), fc.constantFrom('', ' ', '\n'), (values, cuts, sep) => {
        const bytes = Buffer.from(values.map((v) => JSON.stringify(v)).join(sep), 'utf8');
        const splitter = new JsonMessageSplitter();
        const out = cut(bytes, cuts).flatMap((chunk) => splitter.push(chunk));
        expect(out).toEqual(values.map((v): unknown => JSON.parse(JSON.stringify(v))));
        expect(splitter.bufferedBytes).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  test('byte-by-byte feeding of a multi-byte message', () => {
    const value = { s: 'é€😀 "quoted" \\ {[', n: [1, { a: null }] };
    const bytes = Buffer.from(JSON.stringify(value) + JSON.stringify({ b: 2 }));
    const splitter = new JsonMessageSplitter();
    const out = [];
    for (let i = 0; i < bytes.length; i++) out.push(...splitter.push(bytes.subarray(i, i + 1)));
    expect(out).toEqual([value, { b: 2 }]);
  });

  test.each([
    ['garbage', 'hello', /not a JSON object/],
    ['a top-level array', '[{"id":1}]', /JSON array/],
    ['a top-level string', '"x"', /not a JSON object/],
    ['malformed inside', '{"a":}', /malformed JSON/],
    ['stray closer', '{"a":1}}', /not a JSON object/],
  ])('%s → OVSDB_PROTOCOL', (_name, text, msg) => {
    const err = errorOf(() => new JsonMessageSplitter().push(Buffer.from(text)));
    expect(err.code).toBe('OVSDB_PROTOCOL');
    expect(err.message).toMatch(msg);
  });

  test('nesting deeper than the cap → OVSDB_PROTOCOL', () => {
    const err = errorOf(() => new JsonMessageSplitter({ maxDepth: 10 }).push(Buffer.from('{"a":' + '['.repeat(20))));
    expect(err.code).toBe('OVSDB_PROTOCOL');
  });

  test('size cap: complete or still incomplete message over the cap → OVSDB_MESSAGE_TOO_LARGE; at the cap is fine', () => {
    const exact = Buffer.from(JSON.stringify({ x: 'y'.repeat(100) }));
    expect(new JsonMessageSplitter({ maxMessageBytes: exact.length }).push(exact)).toHaveLength(1);
    expect(errorOf(() => new JsonMessageSplitter({ maxMessageBytes: exact.length - 1 }).push(exact)).code).toBe('OVSDB_MESSAGE_TOO_LARGE');
    const s = new JsonMessageSplitter({ maxMessageBytes: 50 });
    s.push(Buffer.from('{"x":"' + 'a'.repeat(30)));
    expect(errorOf(() => s.push(Buffer.from('a'.repeat(30)))).code).toBe('OVSDB_MESSAGE_TOO_LARGE');
    // After a failure the splitter stays failed.
    expect(errorOf(() => s.push(Buffer.from('{}'))).code).toBe('OVSDB_MESSAGE_TOO_LARGE');
  });

  test('a 1.5 MB monitor reply in 64 KiB chunks', () => {
    const rows: Record<string, unknown> = {};
    for (let i = 0; i < 8000; i++) {
      rows[`0000${i}-aaaa-bbbb-cccc-dddddddddddd`] = {
        initial: { name: `perf${i}`, external_ids: ['map', [['attached-mac', '52:54:00:00:1b:29'], ['idx', String(i)], ['iface-id', `vm-${i}`]]] },
      };
    }
    const reply = { id: 1, result: [false, '0', { Interface: rows }], error: null };
    const bytes = Buffer.from(JSON.stringify(reply));
    const splitter = new JsonMessageSplitter();
    const out = [];
    for (let i = 0; i < bytes.length; i += 65536) out.push(...splitter.push(bytes.subarray(i, i + 65536)));
    expect(out).toEqual([reply]);
  });
});
