import { pino } from 'pino';
import type { DestinationStream, LevelWithSilent, LogFn, Logger } from 'pino';

/**
 * The pino root logger: NDJSON on stdout (journald captures it: docs/platform.md §4), one child
 * per component (`{"component":"xapi"}`), secrets redacted, an optional `<N>` syslog-priority prefix,
 * and a level API for SIGUSR2, SIGHUP and `vlog/set`.
 */

/** Paths pino removes from every log object. Libraries must still never pass secrets deliberately. */
export const REDACT_PATHS: readonly string[] = [
  'password',
  '*.password',
  '*.*.password',
  'xapiPassword',
  '*.xapiPassword',
  'session',
  '*.session',
  'sessionRef',
  '*.sessionRef',
  'sessionId',
  '*.sessionId',
  'headers.authorization',
  '*.headers.authorization',
  'headers.cookie',
  '*.headers.cookie',
];

export const REDACTED = '[Redacted]';

const OPAQUE_REF = /OpaqueRef:[0-9A-Za-z-]+/g;

/**
 * Replaces every XAPI reference value (`OpaqueRef:…`) in a string. A session ref is an `OpaqueRef:` like
 * any other object ref, so a message cannot be redacted by path; use this on free text (error messages,
 * peer replies) that may carry one. The root logger applies it to string arguments of log calls.
 */
export function redactRefs(text: string): string {
  return text.replace(OPAQUE_REF, `OpaqueRef:${REDACTED}`);
}

/** journald/syslog priority for a pino numeric level (systemd.exec(5) SyslogLevelPrefix; RFC 5424 §6.2.1). */
export function journaldPriority(level: number): number {
  if (level >= 60) return 2; // fatal → crit
  if (level >= 50) return 3; // error → err
  if (level >= 40) return 4; // warn → warning
  if (level >= 30) return 6; // info → info
  return 7; // debug, trace → debug
}

const LEVEL_FIELD = /^\{"level":(\d+)/;

/** `hooks.streamWrite`: prefixes `<N>` to each line so `journalctl -p err` filters pino's errors. */
export function prefixJournaldPriority(line: string): string {
  const m = LEVEL_FIELD.exec(line);
  const level = m?.[1] !== undefined ? Number(m[1]) : 30;
  return `<${journaldPriority(level)}>${line}`;
}

export type SettableLevel = LevelWithSilent;
const SETTABLE: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function isSettableLevel(level: string): level is SettableLevel {
  return SETTABLE.includes(level);
}

export interface LoggingOptions {
  readonly level?: SettableLevel;
  /** Prefix `<N>` syslog priorities (config `logJournaldPrefix`). */
  readonly journaldPrefix?: boolean;
  /** Where lines go; default `pino.destination(1)` (async SonicBoom on stdout). Tests pass a capture stream. */
  readonly destination?: DestinationStream;
  /** Apply `redactRefs` to string arguments of every log call (default true). */
  readonly redactRefsInMessages?: boolean;
  /** Extra bindings on every line, e.g. `{ pid }`. pino's default adds pid and hostname. */
  readonly base?: Record<string, unknown>;
}

export interface ComponentLevel {
  readonly name: string;
  readonly level: string;
}

export interface Logging {
  /** The root logger, for the composition root's own lines. */
  readonly root: Logger;
  /** The child logger of a component (created once, then reused); its level is tracked for `vlog/*`. */
  component(name: string): Logger;
  /** Sets the level of every logger, or of one component (throws `Error` for an unknown component). */
  setLevel(level: SettableLevel, component?: string): void;
  /** The root's level, or a component's. */
  level(component?: string): string;
  /**
   * SIGUSR2: raises verbosity in the cycle info → debug → trace → info (any level other than debug
   * and trace goes to debug). Applies to every logger; returns the new level.
   */
  cycleLevel(): SettableLevel;
  /** Known components and their levels, sorted by name, the root first as "main". */
  components(): readonly ComponentLevel[];
  /** `vlog/reopen`: stdout has nothing to reopen (journald owns the file), so this is a no-op returning "". */
  reopen(): string;
}

/** The name under which the root logger appears in `components()` and `vlog/set`. */
export const ROOT_COMPONENT = 'main';

export function createLogging(options: LoggingOptions = {}): Logging {
  const redactRefsInMessages = options.redactRefsInMessages ?? true;
  const hooks: { streamWrite?: (s: string) => string; logMethod?: (this: Logger, args: Parameters<LogFn>, method: LogFn, level: number) => void } = {};
  if (options.journaldPrefix === true) hooks.streamWrite = prefixJournaldPriority;
  if (redactRefsInMessages) {
    hooks.logMethod = function redactMessageRefs(this: Logger, args, method) {
      const redacted = args.map((a: unknown) => (typeof a === 'string' ? redactRefs(a) : a)) as Parameters<LogFn>;
      method.apply(this, redacted);
    };
  }
  const root = pino(
    {
      level: options.level ?? 'info',
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      hooks,
      ...(options.base !== undefined ? { base: options.base } : {}),
    },
    options.destination ?? pino.destination(1),
  );
  const children = new Map<string, Logger>();

  const lookup = (component: string): Logger => {
    if (component === ROOT_COMPONENT) return root;
    const child = children.get(component);
    if (child === undefined) throw new Error(`unknown component "${component}"`);
    return child;
  };

  const logging: Logging = {
    root,
    component(name) {
      if (name === ROOT_COMPONENT) return root;
      let child = children.get(name);
      if (child === undefined) {
        child = root.child({ component: name }, { level: root.level });
        children.set(name, child);
      }
      return child;
    },
    setLevel(level, component) {
      if (component !== undefined) {
        lookup(component).level = level;
        return;
      }
      root.level = level;
      for (const child of children.values()) child.level = level;
    },
    level(component) {
      return component === undefined ? root.level : lookup(component).level;
    },
    cycleLevel() {
      const next: SettableLevel = root.level === 'debug' ? 'trace' : root.level === 'trace' ? 'info' : 'debug';
      logging.setLevel(next);
      return next;
    },
    components() {
      const list = [...children.entries()].map(([name, l]) => ({ name, level: l.level }));
      list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return [{ name: ROOT_COMPONENT, level: root.level }, ...list];
    },
    reopen() {
      return '';
    },
  };
  return logging;
}

// ---------------------------------------------------------------------------------------------------

export interface FailureSummarizerOptions {
  /** Summarise after this many repeats (default 100). */
  readonly everyN?: number;
  /** …or when this long has passed since the last line for the key, at the next repeat (default 60 s). */
  readonly everyMs?: number;
  readonly now?: () => number;
  /** Level of the first line and the summaries (default warn); single repeats go at debug. */
  readonly level?: 'warn' | 'error';
}

export interface FailureSummarizer {
  /**
   * Records one failure of `key` (e.g. "ovsdb-connect"). The first is logged at once; repeats are
   * counted and logged as one summary line every `everyN` repeats or `everyMs`, whichever comes first.
   */
  failure(key: string, msg: string, fields?: Record<string, unknown>): void;
  /** The key works again: logs one info line with the failure count if it was failing. Returns whether it was. */
  recovered(key: string, msg?: string, fields?: Record<string, unknown>): boolean;
  /** Failure count of a key currently failing, 0 otherwise. */
  failures(key: string): number;
}

interface FailureState {
  count: number;
  reported: number;
  firstAt: number;
  lastReportAt: number;
}

/**
 * Keeps a flapping peer from flooding the journal (docs/design.md §8: suppression
 * counter) while still saying how often it failed and when it came back. No timers: summaries are
 * emitted on the next failure, so nothing runs when nothing happens.
 */
export function createFailureSummarizer(logger: Logger, options: FailureSummarizerOptions = {}): FailureSummarizer {
  const everyN = Math.max(1, options.everyN ?? 100);
  const everyMs = options.everyMs ?? 60_000;
  const now = options.now ?? Date.now;
  const level = options.level ?? 'warn';
  const states = new Map<string, FailureState>();
  return {
    failure(key, msg, fields = {}) {
      const t = now();
      const state = states.get(key);
      if (state === undefined) {
        states.set(key, { count: 1, reported: 1, firstAt: t, lastReportAt: t });
        logger[level]({ ...fields, failureKey: key }, msg);
        return;
      }
      state.count++;
      const pending = state.count - state.reported;
      if (pending >= everyN || t - state.lastReportAt >= everyMs) {
        const seconds = Math.round((t - state.lastReportAt) / 1000);
        logger[level](
          { ...fields, failureKey: key, repeats: pending, failures: state.count, failingForMs: t - state.firstAt },
          `${msg} (repeated ${pending} more times in ${seconds}s)`,
        );
        state.reported = state.count;
        state.lastReportAt = t;
      } else {
        logger.debug({ ...fields, failureKey: key, failures: state.count }, msg);
      }
    },
    recovered(key, msg, fields = {}) {
      const state = states.get(key);
      if (state === undefined) return false;
      states.delete(key);
      const t = now();
      logger.info(
        { ...fields, failureKey: key, failures: state.count, failingForMs: t - state.firstAt },
        msg ?? `${key} recovered after ${state.count} failure${state.count === 1 ? '' : 's'}`,
      );
      return true;
    },
    failures(key) {
      return states.get(key)?.count ?? 0;
    },
  };
}
