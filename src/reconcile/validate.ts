/**
 * Values that come from XAPI (`nicira-*` overrides, host facts) or from files end up in OVSDB
 * transactions and in log lines. Anyone with XAPI write access to an object's other_config chooses them,
 * so they are checked before use: a rejected value is treated as absent (plus a warning), so it can
 * neither break a transaction nor forge or garble a log line.
 */

/** Longest accepted id, in UTF-16 code units (ids are uuids or short controller names). */
export const MAX_ID_LENGTH = 255;

/**
 * Control (Cc), format (Cf: bidi overrides, zero-width), surrogate (Cs: lone halves are not valid
 * UTF-8 on the wire), private-use (Co), unassigned (Cn) and line/paragraph separators.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;

/** True when `value` is a non-empty, printable id of at most `MAX_ID_LENGTH` code units. */
export function isSafeId(value: string): boolean {
  return value.length > 0 && value.length <= MAX_ID_LENGTH && !UNSAFE.test(value);
}

const UNSAFE_GLOBAL = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}"\\]/gu;
const LOG_QUOTE_LIMIT = 64;

/** `value` as a double-quoted, escaped, truncated string that is safe inside one log line. */
export function quoteForLog(value: string): string {
  const cut = value.length > LOG_QUOTE_LIMIT ? value.slice(0, LOG_QUOTE_LIMIT) : value;
  const escaped = cut.replace(UNSAFE_GLOBAL, (ch) => {
    if (ch === '"' || ch === '\\') return `\\${ch}`;
    return `\\u{${(ch.codePointAt(0) ?? 0).toString(16)}}`;
  });
  const suffix = value.length > LOG_QUOTE_LIMIT ? `…(${value.length} chars)` : '';
  return `"${escaped}"${suffix}`;
}
