import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isSafeId, MAX_ID_LENGTH, quoteForLog } from '../../../src/reconcile/validate.js';

describe('isSafeId', () => {
  it.each([
    ['6ab1b260-f624-4ccf-8c2e-4f5d4a2f1b30', true],
    ['custom iface ID', true],
    ['ünïcödé-名前', true],
    ['a'.repeat(MAX_ID_LENGTH), true],
    ['a'.repeat(MAX_ID_LENGTH + 1), false],
    ['', false],
    ['line\nbreak', false],
    ['nul\u0000', false],
    ['del\u007f', false],
    ['c1\u0085', false],
    ['bidi\u202eoverride', false],
    ['zero\u200bwidth', false],
    ['lone\ud800surrogate', false],
    ['sep\u2028line', false],
    ['private\ue000use', false],
  ])('%j → %s', (value, expected) => {
    expect(isSafeId(value)).toBe(expected);
  });
});

/** Any UTF-16 string, lone surrogates included (cheaper than fast-check's `binary` unit). */
const anyUtf16 = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
      fc.constantFrom('\n', '\u0000', '\u202e', '"', '\\'),
    ),
    { maxLength: 120 },
  )
  .map((parts) => parts.join(''));

describe('quoteForLog', () => {
  it('escapes quotes, backslashes and control characters, and truncates', () => {
    expect(quoteForLog('a"b\\c\nd')).toBe('"a\\"b\\\\c\\u{a}d"');
    expect(quoteForLog('x'.repeat(100))).toBe(`"${'x'.repeat(64)}"…(100 chars)`);
  });

  it('never lets a line break or control character through (property)', () => {
    fc.assert(
      fc.property(anyUtf16, (s) => {
        const q = quoteForLog(s);
        expect(q).not.toMatch(/[\p{Cc}\p{Zl}\p{Zp}\p{Cf}]/u);
        expect(q.length).toBeLessThan(64 * 12 + 40);
      }),
    );
  });
});
