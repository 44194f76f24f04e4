/**
 * The readable view of the daemon's journal (issue 15: a dom0 has no npm, so no `npx pino-pretty`).
 * Input lines are what `journalctl -o cat` prints: the daemon's pino NDJSON (docs/design.md §6; journald has
 * already removed the `<N>` priority prefix, which is tolerated here all the same) and anything else
 * the unit wrote (a crash trace, systemd's own lines). A pino line becomes
 * `2026-12-07 13:01:54.123 WARN  [xapi] message key=value …` with an error's stack on indented lines
 * below; every other line passes through unchanged and is never filtered out.
 */

/** pino's numeric levels. */
export const LEVELS: Readonly<Record<string, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** Fields shown in the line's head, or that say nothing on a host (pino's `pid`, `hostname`). */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'component', 'pid', 'hostname']);

const PRIORITY_PREFIX = /^<[0-7]>/;

interface PinoLine {
  readonly level: number;
  readonly [key: string]: unknown;
}

/** The level for a `--level` value (a name or a number), or undefined if it is neither. */
export function parseLevel(value: string): number | undefined {
  const named = LEVELS[value.toLowerCase()];
  if (named !== undefined) return named;
  return /^\d+$/.test(value) ? Number(value) : undefined;
}

function levelName(level: number): string {
  const entry = Object.entries(LEVELS).find(([, n]) => n === level);
  return (entry?.[0] ?? `L${level}`).toUpperCase();
}

function parsePino(line: string): PinoLine | undefined {
  const text = line.replace(PRIORITY_PREFIX, '');
  if (!text.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const level = (value as { level?: unknown }).level;
  return typeof level === 'number' ? (value as PinoLine) : undefined;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Local wall-clock time with milliseconds, as `journalctl` shows it; non-numbers are shown as given. */
function formatTime(time: unknown): string {
  if (typeof time !== 'number') return typeof time === 'string' ? time : '-';
  const d = new Date(time);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

/** An error object's stack, when it has one, for the lines under the head. */
function stackOf(value: unknown): string | undefined {
  const stack = (value as { stack?: unknown } | null)?.stack;
  return typeof stack === 'string' ? stack : undefined;
}

/**
 * One journal line in readable form, or undefined when it is a pino line below `minLevel`. Lines that
 * are not pino JSON objects come back unchanged.
 */
export function formatLine(line: string, minLevel = 0): string | undefined {
  const entry = parsePino(line);
  if (entry === undefined) return line;
  if (entry.level < minLevel) return undefined;
  const head = [formatTime(entry.time), levelName(entry.level).padEnd(5)];
  if (typeof entry.component === 'string') head.push(`[${entry.component}]`);
  if (entry.msg !== undefined) head.push(typeof entry.msg === 'string' ? entry.msg : formatValue(entry.msg));
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (HEAD_FIELDS.has(key)) continue;
    const stack = stackOf(value);
    if (stack !== undefined) {
      stacks.push(stack);
      const rest = Object.fromEntries(Object.entries(value as object).filter(([k]) => k !== 'stack'));
      head.push(`${key}=${formatValue(rest)}`);
    } else {
      head.push(`${key}=${formatValue(value)}`);
    }
  }
  const body = stacks.flatMap((s) => s.split('\n')).map((l) => `    ${l}`);
  return [head.join(' '), ...body].join('\n');
}
