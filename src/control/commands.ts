import { redactRefs } from '../log.js';
import type { Logging, SettableLevel } from '../log.js';

/**
 * The unixctl command registry and the commands every OVS daemon answers (docs/ovsdb.md §6):
 * `list-commands` and `version` (registered by the registry itself, as `unixctl_server_create` does) and
 * `vlog/set`, `vlog/list`, `vlog/reopen` on top of `log.ts` (`registerVlogCommands`). Replies and
 * error texts follow OVS lib/unixctl.c `process_command` word for word, since operators' scripts and
 * `ovs-appctl` users know them.
 */

/** A command's reply body; throw (any Error) to send an error reply with the error's message. */
export type CommandHandler = (args: readonly string[]) => Promise<string> | string;

export interface UnixctlCommand {
  readonly name: string;
  readonly usage: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly handler: CommandHandler;
}

/** A handler's way to fail with exactly this text as the error reply. */
export class UnixctlCommandError extends Error {}

export type DispatchResult = { readonly ok: true; readonly body: string } | { readonly ok: false; readonly body: string };

/** OVS appends "\n" to any non-empty body that lacks one (lib/unixctl.c `unixctl_command_reply__`). */
export function terminateBody(body: string): string {
  return body !== '' && !body.endsWith('\n') ? `${body}\n` : body;
}

export interface CommandRegistryOptions {
  /** The program name in the `version` reply. */
  readonly programName: string;
  readonly version: string;
}

export class CommandRegistry {
  private readonly commands = new Map<string, UnixctlCommand>();

  constructor(options: CommandRegistryOptions) {
    this.register('list-commands', '', 0, 0, () => this.listCommands());
    this.register('version', '', 0, 0, () => `${options.programName} (Open vSwitch compatible) ${options.version}`);
  }

  /** Adds (or replaces) a command. `maxArgs` may be `Infinity` (OVS: INT_MAX). */
  register(name: string, usage: string, minArgs: number, maxArgs: number, handler: CommandHandler): void {
    if (name === '' || /\s/.test(name)) throw new Error(`invalid unixctl command name ${JSON.stringify(name)}`);
    if (minArgs < 0 || maxArgs < minArgs) throw new Error(`invalid argument counts for "${name}"`);
    this.commands.set(name, { name, usage, minArgs, maxArgs, handler });
  }

  has(name: string): boolean {
    return this.commands.has(name);
  }

  /** Commands sorted by name. */
  list(): readonly UnixctlCommand[] {
    return [...this.commands.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The `list-commands` body: a header and one `"  %-23s %s\n"` line per command (lib/unixctl.c l.66-88). */
  listCommands(): string {
    let out = 'The available commands are:\n';
    for (const c of this.list()) out += `  ${c.name.padEnd(23)} ${c.usage}\n`;
    return out;
  }

  /**
   * Validates and runs one request as OVS does: unknown command, too few/many arguments, non-string
   * argument, in that order. Never throws: a handler's failure becomes an error reply.
   */
  async dispatch(method: string, params: readonly unknown[]): Promise<DispatchResult> {
    const command = this.commands.get(method);
    if (command === undefined) {
      return { ok: false, body: `"${method}" is not a valid command (use "list-commands" to see a list of valid commands)\n` };
    }
    if (params.length < command.minArgs) {
      return { ok: false, body: `"${method}" command requires at least ${command.minArgs} arguments\n` };
    }
    if (params.length > command.maxArgs) {
      return { ok: false, body: `"${method}" command takes at most ${command.maxArgs} arguments\n` };
    }
    const args: string[] = [];
    for (const p of params) {
      if (typeof p !== 'string') return { ok: false, body: `"${method}" command has non-string argument\n` };
      args.push(p);
    }
    try {
      const body = await command.handler(args);
      return { ok: true, body: terminateBody(body) };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, body: terminateBody(redactRefs(message)) };
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// vlog: OVS level names ↔ pino levels.

/** OVS vlog levels (lib/vlog.c) and the pino level each maps to; `trace` is our extension below `dbg`. */
const VLOG_TO_PINO: ReadonlyMap<string, SettableLevel> = new Map<string, SettableLevel>([
  ['off', 'silent'],
  ['emer', 'fatal'],
  ['err', 'error'],
  ['warn', 'warn'],
  ['info', 'info'],
  ['dbg', 'debug'],
  // pino's own names, accepted too.
  ['silent', 'silent'],
  ['fatal', 'fatal'],
  ['error', 'error'],
  ['debug', 'debug'],
  ['trace', 'trace'],
]);

const PINO_TO_VLOG: Readonly<Record<string, string>> = {
  silent: 'OFF',
  fatal: 'EMER',
  error: 'ERR',
  warn: 'WARN',
  info: 'INFO',
  debug: 'DBG',
  trace: 'TRACE',
};

/** OVS destinations. We have one output (stdout → journald), so every destination means it. */
const DESTINATIONS: ReadonlySet<string> = new Set(['console', 'syslog', 'file']);

export interface VlogSetting {
  /** `undefined` = every component. */
  readonly module: string | undefined;
  readonly level: SettableLevel;
}

/**
 * Parses one `vlog/set` spec like OVS `vlog_set_levels_from_string`: words separated by `:`, space, `,`
 * or tab, each a destination, a level or a module; `ANY` is a wildcard; no level means `dbg`.
 * Throws `UnixctlCommandError` with OVS's wording.
 */
export function parseVlogSpec(spec: string, modules: readonly string[]): VlogSetting {
  if (/^pattern:/i.test(spec.trim())) {
    throw new UnixctlCommandError('log patterns are not supported: ovs-xapi-sync writes JSON lines');
  }
  let destination: string | undefined;
  let level: SettableLevel | undefined;
  let module: string | undefined;
  for (const word of spec.split(/[ ,:\t]+/).filter((w) => w !== '')) {
    const lower = word.toLowerCase();
    if (lower === 'any') continue;
    if (DESTINATIONS.has(lower)) {
      if (destination !== undefined) throw new UnixctlCommandError('cannot specify multiple destinations');
      destination = lower;
    } else if (VLOG_TO_PINO.has(lower)) {
      if (level !== undefined) throw new UnixctlCommandError('cannot specify multiple levels');
      level = VLOG_TO_PINO.get(lower);
    } else if (modules.includes(word)) {
      if (module !== undefined) throw new UnixctlCommandError('cannot specify multiple modules');
      module = word;
    } else {
      throw new UnixctlCommandError(`no destination, level, or module "${word}"`);
    }
  }
  return { module, level: level ?? 'debug' };
}

/** The `vlog/list` table, OVS layout (`"%-16s  %4s       %4s       %4s\n"`), one row per component. */
export function formatVlogList(components: readonly { name: string; level: string }[]): string {
  let out = '                 console    syslog    file\n';
  out += '                 -------    ------    ------\n';
  for (const c of components) {
    const v = PINO_TO_VLOG[c.level] ?? c.level.toUpperCase();
    out += `${c.name.padEnd(16)}  ${v.padStart(4)}       ${v.padStart(4)}       ${v.padStart(4)}\n`;
  }
  return out;
}

/** Registers `vlog/set`, `vlog/list` and `vlog/reopen` (lib/vlog.c `vlog_init`). Successful sets reply "". */
export function registerVlogCommands(registry: CommandRegistry, logging: Logging): void {
  registry.register('vlog/set', '{spec | PATTERN:destination:pattern}', 0, Number.MAX_SAFE_INTEGER, (args) => {
    const modules = logging.components().map((c) => c.name);
    // Validate every spec before applying any, so a bad one changes nothing.
    const settings = args.map((spec) => parseVlogSpec(spec, modules));
    for (const s of settings) logging.setLevel(s.level, s.module);
    return '';
  });
  registry.register('vlog/list', '', 0, 0, () => formatVlogList(logging.components()));
  registry.register('vlog/reopen', '', 0, 0, () => logging.reopen());
}

/** What the daemon's own commands do; `status` answers with the text of control/status.ts. */
export interface DaemonCommands {
  exit(): void;
  flushCache(): void;
  status(): string;
}

/** Registers `exit`, `flush-cache` and `status` (docs/design.md §7). */
export function registerDaemonCommands(registry: CommandRegistry, commands: DaemonCommands): void {
  registry.register('exit', '', 0, 0, () => {
    commands.exit();
    return '';
  });
  registry.register('flush-cache', '', 0, 0, () => {
    commands.flushCache();
    return '';
  });
  registry.register('status', '', 0, 0, () => commands.status());
}
