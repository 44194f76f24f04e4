import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { CodedError } from './errors.js';
import { parseRemote } from './ovsdb/remote.js';
import { MANAGED_KEYS, type ManagedKey } from './reconcile/changeset.js';
import { isSafeId, MAX_ID_LENGTH, quoteForLog } from './reconcile/validate.js';

/**
 * Typed configuration with one precedence rule (docs/design.md §6): command line > environment
 * (`OVS_XAPI_SYNC_<UPPER_SNAKE>`) > JSON config file (camelCase keys) > defaults.
 *
 * Everything here is a pure function of its inputs (argv, env, a file reader, the pid): no `process.*`.
 * Every problem is reported as one `ConfigError` whose message is a single line naming the option in
 * the form the operator used (`--xapi`, `OVS_XAPI_SYNC_XAPI`, `config file F: xapi`).
 */

export const PROGRAM_NAME = 'ovs-xapi-sync';
export const ENV_PREFIX = 'OVS_XAPI_SYNC_';
export const DEFAULT_CONFIG_PATH = '/etc/ovs-xapi-sync/config.json';
/** OVS's built-in run directory (docs/ovsdb.md §6: lib/dirs.c). */
export const DEFAULT_OVS_RUNDIR = '/var/run/openvswitch';
/** The documented default port of the HTTP health endpoint (loopback only by default). */
export const DEFAULT_HEALTH_PORT = 9720;

export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevelName[] = ['trace', 'debug', 'info', 'warn', 'error'];
/** `auto`: JSON-RPC, falling back to XML-RPC once when the host refuses `/jsonrpc` (src/xapi/protocol-fallback.ts). */
export type XapiProtocol = 'auto' | 'jsonrpc' | 'xmlrpc';

export interface HealthAddress {
  readonly host: string;
  readonly port: number;
}

export interface Config {
  /** OVSDB remote, `unix:PATH` or `tcp:HOST:PORT` (validated with `parseRemote`). */
  readonly database: string;
  /** XAPI URL: `unix:PATH`, `http://…` or `https://…`. */
  readonly xapi: string;
  readonly xapiProtocol: XapiProtocol;
  readonly xapiUser: string;
  readonly xapiPasswordFile: string | null;
  /** The password read from `xapiPasswordFile` ("" without one). Never log it; see `describeConfig`. */
  readonly xapiPassword: string;
  readonly rootPrefix: string;
  /** The config file actually read, if any. */
  readonly configFile: string | null;
  /** `null` = the health endpoint is off. */
  readonly health: HealthAddress | null;
  /** Absolute path of the ovs-appctl control socket. */
  readonly unixctl: string;
  /** Absolute pidfile path, `null` = no pidfile. */
  readonly pidfile: string | null;
  readonly logLevel: LogLevelName;
  readonly once: boolean;
  readonly dryRun: boolean;
  readonly systemId: string | null;
  readonly enableStatistics: boolean;
  /** The owned fields the daemon writes and removes, in `MANAGED_KEYS` order; the others are left as found. */
  readonly managedKeys: readonly ManagedKey[];
  /** Write `external_ids:neutron-port-uuid` on vif rows, as XenServer 8 / XCP-ng 8.3 do (issue 13 §5). */
  readonly neutronPortUuid: boolean;
  /** Periodic full resync; 0 disables it. */
  readonly resyncIntervalSec: number;
  readonly xapiCaFile: string | null;
  readonly xapiInsecure: boolean;
  readonly xapiCallTimeoutMs: number;
  readonly xapiEventTimeoutSec: number;
  readonly xapiLookupBatchSize: number;
  /** Echo probe interval on the OVSDB connection; 0 disables probes. */
  readonly ovsdbProbeIntervalMs: number;
  readonly ovsdbRequestTimeoutMs: number;
  readonly ovsdbMaxMessageBytes: number;
  /** Prefix each log line with a `<N>` syslog priority for journald (systemd.exec(5) SyslogLevelPrefix). */
  readonly logJournaldPrefix: boolean;
  /** Upper bound of the capped exponential reconnect/retry backoff. */
  readonly retryMaxDelayMs: number;
  /** Grace period for SIGTERM/SIGINT before giving up on in-flight work (docs/design.md §6: exit within 5 s). */
  readonly shutdownTimeoutMs: number;
  /** `$OVS_RUNDIR` or `/var/run/openvswitch`: where ovs-appctl looks for `NAME.pid` and `NAME.PID.ctl`. */
  readonly ovsRundir: string;
}

export type ConfigKey = keyof Config;

export type SourceKind = 'cli' | 'env' | 'file' | 'default';
/** Where one value came from; `name` is the flag, the variable, the file path, or "default". */
export interface ValueSource {
  readonly kind: SourceKind;
  readonly name: string;
}
export type ConfigSources = Readonly<Record<ConfigKey, ValueSource>>;

export type LoadResult =
  | { readonly kind: 'run'; readonly config: Config; readonly sources: ConfigSources }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version'; readonly text: string };

/** A bad option or config value: the CLI prints `message` (one line) and exits 2. */
export class ConfigError extends CodedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
  }
}

export interface FileStat {
  readonly mode: number;
  isFile(): boolean;
}

export interface LoadConfigOptions {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The daemon's pid, for the default control socket name `ovs-xapi-sync.<pid>.ctl`. */
  readonly pid: number;
  readonly defaultConfigPath?: string;
  readonly readFile?: (path: string) => string;
  readonly stat?: (path: string) => FileStat;
  /** Overrides the version read from package.json (tests). */
  readonly version?: string;
}

/** Settings that take effect on SIGHUP; all others are kept at their running value until a restart. */
export const RELOADABLE_KEYS: ReadonlySet<ConfigKey> = new Set<ConfigKey>([
  'logLevel',
  'dryRun',
  'systemId',
  'enableStatistics',
  'resyncIntervalSec',
]);

// ---------------------------------------------------------------------------------------------------
// Value kinds: each parses a command-line/environment string and a JSON value, or throws `Invalid`.

class Invalid extends Error {}

interface Ctx {
  readonly rundir: string;
  readonly pid: number;
  readonly env: Readonly<Record<string, string | undefined>>;
}

interface Kind {
  /** Shown in help and in type errors. */
  readonly describe: string;
  fromString(raw: string, ctx: Ctx): unknown;
  fromJson(value: unknown, ctx: Ctx): unknown;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function quote(raw: string): string {
  const s = JSON.stringify(raw);
  return s.length > 82 ? `${s.slice(0, 80)}…"` : s;
}

function viaString(kind: Omit<Kind, 'fromJson'>, expected: string, nullable = false): Kind {
  return {
    ...kind,
    fromJson(value, ctx) {
      if (value === null && nullable) return null;
      if (typeof value !== 'string') throw new Invalid(`expected ${expected}, got ${typeOf(value)}`);
      return kind.fromString(value, ctx);
    },
  };
}

const remoteKind: Kind = viaString(
  {
    describe: 'unix:PATH|tcp:HOST:PORT',
    fromString(raw) {
      try {
        parseRemote(raw);
      } catch (err) {
        throw new Invalid(err instanceof Error ? err.message : String(err));
      }
      return raw;
    },
  },
  'a string',
);

const xapiUrlKind: Kind = viaString(
  {
    describe: 'unix:PATH|http://HOST[:PORT]|https://HOST[:PORT]',
    fromString(raw) {
      if (raw.startsWith('unix:')) {
        const path = raw.slice(5);
        if (path === '' || path.includes('\0')) throw new Invalid(`${quote(raw)} has an empty or invalid socket path`);
        return raw;
      }
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new Invalid(`${quote(raw)} is not unix:PATH or an http:// or https:// URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new Invalid(`unsupported scheme "${url.protocol}" (expected unix:, http: or https:)`);
      }
      if (url.hostname === '') throw new Invalid(`${quote(raw)} has no host`);
      if (url.username !== '' || url.password !== '') {
        throw new Invalid('credentials in the URL are not accepted; use --xapi-user and --xapi-password-file');
      }
      return raw;
    },
  },
  'a string',
);

function enumKind(values: readonly string[]): Kind {
  return viaString(
    {
      describe: values.join('|'),
      fromString(raw) {
        if (!values.includes(raw)) throw new Invalid(`expected one of ${values.join(', ')}, got ${quote(raw)}`);
        return raw;
      },
    },
    `one of ${values.join(', ')}`,
  );
}

function stringKind(describe: string, options: { nonEmpty?: boolean; nullable?: boolean; noSpace?: boolean; safeId?: boolean } = {}): Kind {
  return viaString(
    {
      describe,
      fromString(raw) {
        if (raw.includes('\0')) throw new Invalid('contains a NUL byte');
        if (options.nonEmpty === true && raw === '') throw new Invalid('must not be empty');
        if (options.noSpace === true && /\s/.test(raw)) throw new Invalid(`${quote(raw)} must not contain white space`);
        if (options.nullable === true && raw === '') return null;
        // Written into OVSDB and logged: the reconciler's own rule for ids (length, printable characters).
        if (options.safeId === true && !isSafeId(raw)) throw new Invalid(`${quoteForLog(raw)} is not a safe id (1..${MAX_ID_LENGTH} printable characters)`);
        return raw;
      },
    },
    'a string',
    options.nullable === true,
  );
}

const boolKind: Kind = {
  describe: 'true|false',
  fromString(raw) {
    const v = raw.trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(v)) return true;
    if (['false', 'no', 'off', '0'].includes(v)) return false;
    throw new Invalid(`expected true or false, got ${quote(raw)}`);
  },
  fromJson(value) {
    if (typeof value !== 'boolean') throw new Invalid(`expected a boolean, got ${typeOf(value)}`);
    return value;
  },
};

function intKind(min: number, max: number, note = ''): Kind {
  const check = (n: number): number => {
    if (!Number.isSafeInteger(n)) throw new Invalid(`expected an integer, got ${n}`);
    if (n < min || n > max) throw new Invalid(`${n} is out of range ${min}-${max}${note}`);
    return n;
  };
  return {
    describe: 'N',
    fromString(raw) {
      if (!/^-?[0-9]+$/.test(raw.trim())) throw new Invalid(`expected an integer, got ${quote(raw)}`);
      return check(Number(raw.trim()));
    },
    fromJson(value) {
      if (typeof value !== 'number') throw new Invalid(`expected a number, got ${typeOf(value)}`);
      return check(value);
    },
  };
}

/** Owned field names (`MANAGED_KEYS`) in canonical order without repeats; unknown or no names are refused. */
function managedKeyList(names: readonly string[]): ManagedKey[] {
  const known: readonly string[] = MANAGED_KEYS;
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new Invalid(`unknown key ${unknown.map(quote).join(', ')} (known keys: ${MANAGED_KEYS.join(', ')})`);
  }
  if (names.length === 0) throw new Invalid('names no key; list at least one (dryRun is the way to write nothing)');
  return MANAGED_KEYS.filter((key) => names.includes(key));
}

/** A JSON array of key names; in the environment, names separated by commas. */
const managedKeysKind: Kind = {
  describe: 'KEY[,KEY...]',
  fromString(raw) {
    return managedKeyList(
      raw
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== ''),
    );
  },
  fromJson(value) {
    if (!Array.isArray(value)) throw new Invalid(`expected an array of key names, got ${typeOf(value)}`);
    const names: string[] = [];
    for (const item of value as unknown[]) {
      if (typeof item !== 'string') throw new Invalid(`expected an array of key names, got an array holding ${typeOf(item)}`);
      names.push(item);
    }
    return managedKeyList(names);
  },
};

/** `ADDR:PORT`, `[v6]:PORT` or `off`. Port 0 asks the OS for a free port (tests). */
export function parseHealthAddress(raw: string): HealthAddress | null {
  if (raw === 'off') return null;
  let host: string;
  let portText: string;
  if (raw.startsWith('[')) {
    const close = raw.indexOf(']');
    if (close < 0) throw new Invalid(`${quote(raw)}: unterminated "[" in IPv6 address`);
    host = raw.slice(1, close);
    if (isIP(host) !== 6) throw new Invalid(`"${host}" is not an IPv6 address`);
    if (raw[close + 1] !== ':') throw new Invalid(`${quote(raw)}: missing ":PORT" after the IPv6 address`);
    portText = raw.slice(close + 2);
  } else {
    const colon = raw.lastIndexOf(':');
    if (colon < 0) throw new Invalid(`expected ADDR:PORT, [IPv6]:PORT or off, got ${quote(raw)}`);
    host = raw.slice(0, colon);
    portText = raw.slice(colon + 1);
    if (host.includes(':')) throw new Invalid(`an IPv6 address must be written in brackets, e.g. [::1]:${DEFAULT_HEALTH_PORT}`);
    if (isIP(host) !== 4 && host !== 'localhost') throw new Invalid(`"${host}" is not an IPv4 address (or [IPv6], localhost)`);
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new Invalid(`port ${quote(portText)} is not a number in 0-65535`);
  }
  return { host, port: Number(portText) };
}

const healthKind: Kind = viaString(
  { describe: 'ADDR:PORT|off', fromString: (raw) => parseHealthAddress(raw) },
  'a string ("ADDR:PORT" or "off")',
);

/** OVS resolves a relative pidfile or control socket name against the run directory (lib/daemon-unix.c). */
function inRundir(path: string, ctx: Ctx): string {
  return isAbsolute(path) ? path : join(ctx.rundir, path);
}

const defaultUnixctl = (ctx: Ctx): string => join(ctx.rundir, `${PROGRAM_NAME}.${ctx.pid}.ctl`);

/** A socket path; `null` in the file (or "" in the environment) means the default pid-based name. */
const unixctlKind: Kind = {
  describe: 'PATH',
  fromString(raw, ctx) {
    if (raw === '') return defaultUnixctl(ctx);
    if (raw.includes('\0')) throw new Invalid('contains a NUL byte');
    return inRundir(raw, ctx);
  },
  fromJson(value, ctx) {
    if (value === null) return defaultUnixctl(ctx);
    if (typeof value !== 'string') throw new Invalid(`expected a string or null, got ${typeOf(value)}`);
    return unixctlKind.fromString(value, ctx);
  },
};

/** `--pidfile` alone (or `true`, or "") means `$OVS_RUNDIR/ovs-xapi-sync.pid`; `false`/`off` means none. */
const pidfileKind: Kind = {
  describe: '[=FILE]',
  fromString(raw, ctx) {
    const v = raw.trim().toLowerCase();
    if (raw === '' || ['true', 'yes', 'on'].includes(v)) return join(ctx.rundir, `${PROGRAM_NAME}.pid`);
    if (['false', 'no', 'off'].includes(v)) return null;
    if (raw.includes('\0')) throw new Invalid('contains a NUL byte');
    return inRundir(raw, ctx);
  },
  fromJson(value, ctx) {
    if (value === true) return join(ctx.rundir, `${PROGRAM_NAME}.pid`);
    if (value === false || value === null) return null;
    if (typeof value !== 'string' || value === '') throw new Invalid(`expected a boolean or a path, got ${typeOf(value)}`);
    return pidfileKind.fromString(value, ctx);
  },
};

// ---------------------------------------------------------------------------------------------------
// The option table: one row per setting. `flag` = has a command-line option; `env`/`file` = settable there.

type Reload = 'live' | 'restart';

interface OptionSpec {
  readonly key: Exclude<ConfigKey, 'xapiPassword' | 'configFile' | 'ovsRundir'>;
  readonly flag?: string;
  readonly short?: string;
  readonly metavar?: string;
  readonly positional?: boolean;
  readonly env: boolean;
  readonly file: boolean;
  readonly kind: Kind;
  readonly defaultValue: (ctx: Ctx) => unknown;
  /** Default as shown in help and the README. */
  readonly defaultText: string;
  readonly help: string;
}

const OPTIONS: readonly OptionSpec[] = [
  {
    key: 'database',
    positional: true,
    metavar: 'DATABASE',
    env: true,
    file: true,
    kind: remoteKind,
    defaultValue: () => 'unix:/var/run/openvswitch/db.sock',
    defaultText: 'unix:/var/run/openvswitch/db.sock',
    help: 'OVSDB remote: unix:PATH | tcp:HOST:PORT (tcp:[IPv6]:PORT)',
  },
  {
    key: 'xapi',
    flag: 'xapi',
    metavar: 'URL',
    env: true,
    file: true,
    kind: xapiUrlKind,
    defaultValue: () => 'unix:/var/lib/xcp/xapi',
    defaultText: 'unix:/var/lib/xcp/xapi',
    help: 'XAPI endpoint: unix:PATH | http://HOST[:PORT] | https://HOST[:PORT]',
  },
  {
    key: 'xapiProtocol',
    flag: 'xapi-protocol',
    metavar: 'P',
    env: true,
    file: true,
    kind: enumKind(['auto', 'jsonrpc', 'xmlrpc']),
    defaultValue: () => 'auto',
    defaultText: 'auto',
    help: 'XAPI wire protocol: auto (JSON-RPC, XML-RPC if the host refuses /jsonrpc) | jsonrpc | xmlrpc',
  },
  {
    key: 'xapiUser',
    flag: 'xapi-user',
    metavar: 'U',
    env: true,
    file: true,
    kind: stringKind('U'),
    defaultValue: () => '',
    defaultText: '"" (empty credentials, accepted on the local socket)',
    help: 'XAPI user name',
  },
  {
    key: 'xapiPasswordFile',
    flag: 'xapi-password-file',
    metavar: 'F',
    env: true,
    file: true,
    kind: stringKind('F', { nullable: true }),
    defaultValue: () => null,
    defaultText: 'none (empty password)',
    help: 'file holding the XAPI password (must not be group/world accessible: chmod 600)',
  },
  {
    key: 'rootPrefix',
    flag: 'root-prefix',
    metavar: 'DIR',
    env: true,
    file: true,
    kind: stringKind('DIR'),
    defaultValue: () => '',
    defaultText: '""',
    help: 'prefix for /etc/xensource-inventory and /var/run/xapi_init_complete.cookie',
  },
  {
    key: 'health',
    flag: 'health',
    metavar: 'ADDR:PORT|off',
    env: true,
    file: true,
    kind: healthKind,
    defaultValue: () => ({ host: '127.0.0.1', port: DEFAULT_HEALTH_PORT }),
    defaultText: `127.0.0.1:${DEFAULT_HEALTH_PORT}`,
    help: 'HTTP health endpoint (/healthz /livez /readyz /metrics), or off',
  },
  {
    key: 'unixctl',
    flag: 'unixctl',
    metavar: 'PATH',
    env: true,
    file: true,
    kind: unixctlKind,
    defaultValue: defaultUnixctl,
    defaultText: `$OVS_RUNDIR/${PROGRAM_NAME}.<pid>.ctl`,
    help: 'ovs-appctl control socket (relative paths are under $OVS_RUNDIR)',
  },
  {
    key: 'pidfile',
    flag: 'pidfile',
    metavar: '[=FILE]',
    env: true,
    file: true,
    kind: pidfileKind,
    defaultValue: () => null,
    defaultText: `none; --pidfile alone: $OVS_RUNDIR/${PROGRAM_NAME}.pid`,
    help: 'write an fcntl-locked pidfile (needed by "ovs-appctl -t ovs-xapi-sync")',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    metavar: 'L',
    env: true,
    file: true,
    kind: enumKind(LOG_LEVELS),
    defaultValue: () => 'info',
    defaultText: 'info',
    help: 'trace | debug | info | warn | error',
  },
  {
    key: 'once',
    flag: 'once',
    env: false,
    file: false,
    kind: boolKind,
    defaultValue: () => false,
    defaultText: 'off',
    help: 'reconcile once: exit 0 when the database is converged, 1 when not',
  },
  {
    key: 'dryRun',
    flag: 'dry-run',
    env: true,
    file: true,
    kind: boolKind,
    defaultValue: () => false,
    defaultText: 'off',
    help: 'compute and log the changes, write nothing',
  },
  {
    key: 'systemId',
    env: true,
    file: true,
    kind: stringKind('ID', { nullable: true, noSpace: true, safeId: true }),
    defaultValue: () => null,
    defaultText: 'none (INSTALLATION_UUID, else the XAPI host uuid)',
    help: 'override for external_ids:system-id and xs-system-uuid',
  },
  {
    key: 'enableStatistics',
    env: true,
    file: true,
    kind: boolKind,
    defaultValue: () => false,
    defaultText: 'false',
    help: 'set other_config:enable-statistics=true on Open_vSwitch',
  },
  {
    key: 'managedKeys',
    env: true,
    file: true,
    kind: managedKeysKind,
    defaultValue: () => [...MANAGED_KEYS],
    defaultText: 'every owned key',
    help: 'the owned keys and columns the daemon writes; any other is left as found (e.g. for a Neutron agent)',
  },
  {
    key: 'neutronPortUuid',
    env: true,
    file: true,
    kind: boolKind,
    defaultValue: () => true,
    defaultText: 'true',
    help: "write external_ids:neutron-port-uuid on vif rows from the VIF's neutron-port-uuid, else nicira-iface-id",
  },
  {
    key: 'resyncIntervalSec',
    env: true,
    file: true,
    kind: intKind(0, 7 * 86400, ' (0 disables)'),
    defaultValue: () => 600,
    defaultText: '600',
    help: 'periodic full resync interval in seconds, 0 = off',
  },
  {
    key: 'xapiCaFile',
    env: true,
    file: true,
    kind: stringKind('FILE', { nullable: true }),
    defaultValue: () => null,
    defaultText: 'none (system CAs)',
    help: 'PEM CA bundle for https:// XAPI URLs',
  },
  {
    key: 'xapiInsecure',
    env: true,
    file: true,
    kind: boolKind,
    defaultValue: () => false,
    defaultText: 'false',
    help: 'do not verify the XAPI TLS certificate (pool certificates are often self-signed)',
  },
  {
    key: 'xapiCallTimeoutMs',
    env: true,
    file: true,
    kind: intKind(1000, 3_600_000),
    defaultValue: () => 30_000,
    defaultText: '30000',
    help: 'timeout of one ordinary XAPI call, ms',
  },
  {
    key: 'xapiEventTimeoutSec',
    env: true,
    file: true,
    kind: intKind(30, 60),
    defaultValue: () => 30,
    defaultText: '30',
    help: 'server-side timeout passed to event.from, s (the client waits longer)',
  },
  {
    key: 'xapiLookupBatchSize',
    env: true,
    file: true,
    kind: intKind(1, 1000),
    defaultValue: () => 100,
    defaultText: '100',
    help: 'maximum objects fetched in one batched XAPI lookup',
  },
  {
    key: 'ovsdbProbeIntervalMs',
    env: true,
    file: true,
    kind: intKind(0, 3_600_000, ' (0 disables)'),
    defaultValue: () => 5000,
    defaultText: '5000',
    help: 'echo probe interval on the OVSDB connection, ms, 0 = off',
  },
  {
    key: 'ovsdbRequestTimeoutMs',
    env: true,
    file: true,
    kind: intKind(1000, 3_600_000),
    defaultValue: () => 30_000,
    defaultText: '30000',
    help: 'timeout of one OVSDB request, ms',
  },
  {
    key: 'ovsdbMaxMessageBytes',
    env: true,
    file: true,
    kind: intKind(65_536, 1024 * 1024 * 1024),
    defaultValue: () => 64 * 1024 * 1024,
    defaultText: String(64 * 1024 * 1024),
    help: 'size cap of one incoming OVSDB message, bytes',
  },
  {
    key: 'logJournaldPrefix',
    env: true,
    file: true,
    kind: boolKind,
    defaultValue: (ctx) => (ctx.env.JOURNAL_STREAM ?? '') !== '',
    defaultText: 'true when $JOURNAL_STREAM is set (stdout is the journal)',
    help: 'prefix log lines with <N> syslog priorities so journalctl -p works',
  },
  {
    key: 'retryMaxDelayMs',
    env: true,
    file: true,
    kind: intKind(250, 600_000),
    defaultValue: () => 8000,
    defaultText: '8000',
    help: 'cap of the exponential reconnect/retry backoff, ms',
  },
  {
    key: 'shutdownTimeoutMs',
    env: true,
    file: true,
    kind: intKind(100, 60_000),
    defaultValue: () => 5000,
    defaultText: '5000',
    help: 'grace period on SIGTERM/SIGINT, ms',
  },
];

/** `logLevel` → `LOG_LEVEL`. */
export function envName(key: string): string {
  return ENV_PREFIX + key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

/** The keys a config file may hold. */
export const FILE_KEYS: readonly string[] = OPTIONS.filter((o) => o.file).map((o) => o.key);

/** Documentation rows (option, env var, default, reload) for `--help` and README tests. */
export function optionTable(): readonly {
  key: string;
  flag: string | null;
  env: string | null;
  file: boolean;
  defaultText: string;
  reload: Reload;
  help: string;
}[] {
  return OPTIONS.map((o) => ({
    key: o.key,
    flag: o.positional === true ? (o.metavar ?? o.key) : o.flag !== undefined ? `--${o.flag}` : null,
    env: o.env ? envName(o.key) : null,
    file: o.file,
    defaultText: o.defaultText,
    reload: RELOADABLE_KEYS.has(o.key) ? 'live' : 'restart',
    help: o.help,
  }));
}

// ---------------------------------------------------------------------------------------------------

let cachedVersion: string | undefined;

/** The package version from package.json (works from both src/ and dist/). */
export function packageVersion(): string {
  if (cachedVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
      cachedVersion = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
    } catch {
      cachedVersion = '0.0.0';
    }
  }
  return cachedVersion;
}

export function helpText(): string {
  const lines = [
    `usage: ${PROGRAM_NAME} [OPTIONS] [DATABASE]`,
    '',
    'Keeps the Open vSwitch database consistent with XAPI on XenServer / XCP-ng.',
    'Precedence: command line > environment (OVS_XAPI_SYNC_*) > config file > defaults.',
    '',
    'Options:',
  ];
  const row = (left: string, text: string, dflt: string | null): void => {
    lines.push(`  ${left.padEnd(30)} ${text}`);
    if (dflt !== null) lines.push(`  ${''.padEnd(30)} (default: ${dflt})`);
  };
  for (const o of OPTIONS) {
    if (o.positional === true) row(o.metavar ?? o.key, o.help, o.defaultText);
    else if (o.flag !== undefined) {
      const left = o.flag === 'pidfile' ? '--pidfile[=FILE]' : `--${o.flag}${o.metavar !== undefined ? ` ${o.metavar}` : ''}`;
      row(left, o.help, o.defaultText);
    }
  }
  row('--config FILE', 'JSON config file', `${DEFAULT_CONFIG_PATH} when it exists`);
  row('-V, --version', 'print the version and exit', null);
  row('-h, --help', 'print this help and exit', null);
  lines.push('', 'Settings also accepted in the config file and as OVS_XAPI_SYNC_<NAME> environment variables:');
  for (const o of OPTIONS) {
    if (o.flag !== undefined || o.positional === true) continue;
    row(o.key, o.help, `${o.defaultText}; env ${envName(o.key)}`);
  }
  lines.push(
    '',
    `Every option but --once is also OVS_XAPI_SYNC_<NAME> (e.g. ${envName('logLevel')}) and a camelCase config key.`,
    `SIGHUP reloads: ${[...RELOADABLE_KEYS].join(', ')}; other settings need a restart.`,
    'SIGUSR2 cycles the log level info -> debug -> trace -> info.',
    '',
  );
  return lines.join('\n');
}

const defaultStat = (path: string): FileStat => statSync(path);
const defaultReadFile = (path: string): string => readFileSync(path, 'utf8');

function fsReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return typeof code === 'string' ? code : 'unreadable';
}

/** Maps `parseArgs` errors (ERR_PARSE_ARGS_*) to one line naming the option. */
function describeParseArgsError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const name = /'(-{1,2}[^'\s]+)/.exec(message)?.[1] ?? 'command line';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `${name}: unknown option (see --help)`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/does not take an argument/.test(message)) return `${name}: takes no value`;
    return `${name}: missing value`;
  }
  return `${name}: ${message.split('\n')[0] ?? 'invalid'}`;
}

interface Layer {
  readonly kind: SourceKind;
  readonly values: Map<string, { raw: unknown; name: string }>;
}

/**
 * Loads the configuration. Returns `help`/`version` results for those flags; throws `ConfigError`
 * (one line naming the option) for anything invalid.
 */
export function loadConfig(options: LoadConfigOptions): LoadResult {
  const readFile = options.readFile ?? defaultReadFile;
  const stat = options.stat ?? defaultStat;
  const env = options.env;
  const rundirRaw = env.OVS_RUNDIR;
  const rundir = rundirRaw !== undefined && rundirRaw !== '' ? rundirRaw : DEFAULT_OVS_RUNDIR;
  const ctx: Ctx = { rundir, pid: options.pid, env };

  // --- command line
  // `--pidfile[=FILE]` takes a value only in the `=` form (OVS convention); parseArgs has no optional
  // values, so a bare `--pidfile` becomes `--pidfile=` (empty = the default path) before parsing.
  const argv: string[] = [];
  let afterDashDash = false;
  for (const a of options.argv) {
    if (a === '--') afterDashDash = true;
    argv.push(!afterDashDash && a === '--pidfile' ? '--pidfile=' : a);
  }
  const parseOptions: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    config: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
  };
  for (const o of OPTIONS) {
    if (o.flag === undefined) continue;
    parseOptions[o.flag] = o.kind === boolKind ? { type: 'boolean' } : { type: 'string' };
  }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    const result = parseArgs({ args: argv, options: parseOptions, strict: true, allowPositionals: true });
    parsed = { values: result.values, positionals: result.positionals };
  } catch (err) {
    throw new ConfigError(describeParseArgsError(err), { cause: err });
  }
  if (parsed.values.help === true) return { kind: 'help', text: helpText() };
  if (parsed.values.version === true) {
    return { kind: 'version', text: `${PROGRAM_NAME} (Open vSwitch compatible) ${options.version ?? packageVersion()}\n` };
  }
  if (parsed.positionals.length > 1) {
    throw new ConfigError(`DATABASE: expected at most one database remote, got ${parsed.positionals.length} (${parsed.positionals.map(quote).join(' ')})`);
  }

  const cli: Layer = { kind: 'cli', values: new Map() };
  for (const o of OPTIONS) {
    if (o.positional === true) {
      const p = parsed.positionals[0];
      if (p !== undefined) cli.values.set(o.key, { raw: p, name: o.metavar ?? 'DATABASE' });
    } else if (o.flag !== undefined) {
      const v = parsed.values[o.flag];
      if (v !== undefined) cli.values.set(o.key, { raw: typeof v === 'boolean' ? String(v) : v, name: `--${o.flag}` });
    }
  }

  // --- environment
  const envLayer: Layer = { kind: 'env', values: new Map() };
  for (const o of OPTIONS) {
    if (!o.env) continue;
    const name = envName(o.key);
    const v = env[name];
    if (v !== undefined) envLayer.values.set(o.key, { raw: v, name });
  }

  // --- config file
  const explicitConfig = typeof parsed.values.config === 'string' ? { path: parsed.values.config, name: '--config' } : undefined;
  const envConfig = env[envName('config')];
  const configSpec =
    explicitConfig ?? (envConfig !== undefined && envConfig !== '' ? { path: envConfig, name: envName('config') } : undefined);
  let configFile: string | null = null;
  const fileLayer: Layer = { kind: 'file', values: new Map() };
  let text: string | undefined;
  if (configSpec !== undefined) {
    if (configSpec.path === '') throw new ConfigError(`${configSpec.name}: expected a file path`);
    try {
      text = readFile(configSpec.path);
    } catch (err) {
      throw new ConfigError(`${configSpec.name}: cannot read ${configSpec.path}: ${fsReason(err)}`, { cause: err });
    }
    configFile = configSpec.path;
  } else {
    const path = options.defaultConfigPath ?? DEFAULT_CONFIG_PATH;
    try {
      text = readFile(path);
      configFile = path;
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== 'ENOENT') {
        throw new ConfigError(`config file ${path}: cannot read: ${fsReason(err)}`, { cause: err });
      }
    }
  }
  if (text !== undefined && configFile !== null) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      const detail = err instanceof Error ? err.message.split('\n')[0] ?? '' : '';
      throw new ConfigError(`config file ${configFile}: not valid JSON: ${detail}`, { cause: err });
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ConfigError(`config file ${configFile}: expected a JSON object, got ${typeOf(json)}`);
    }
    for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
      if (!FILE_KEYS.includes(key)) {
        throw new ConfigError(`config file ${configFile}: unknown key ${quote(key)} (valid keys: see config/README.md)`);
      }
      fileLayer.values.set(key, { raw: value, name: configFile });
    }
  }

  // --- resolve each option through the layers
  const out: Record<string, unknown> = {};
  const sources: Record<string, ValueSource> = {};
  for (const o of OPTIONS) {
    let resolved = false;
    for (const layer of [cli, envLayer, fileLayer]) {
      const entry = layer.values.get(o.key);
      if (entry === undefined) continue;
      const label = layer.kind === 'file' ? `config file ${entry.name}: ${o.key}` : entry.name;
      try {
        out[o.key] = layer.kind === 'file' ? o.kind.fromJson(entry.raw, ctx) : o.kind.fromString(entry.raw as string, ctx);
      } catch (err) {
        if (err instanceof Invalid) throw new ConfigError(`${label}: ${err.message}`);
        throw err;
      }
      sources[o.key] = { kind: layer.kind, name: entry.name };
      resolved = true;
      break;
    }
    if (!resolved) {
      out[o.key] = o.defaultValue(ctx);
      sources[o.key] = { kind: 'default', name: 'default' };
    }
  }

  // --- the password file: read it, refuse it when others can read it
  let password = '';
  const passwordFile = out.xapiPasswordFile as string | null;
  const pwSource = sources.xapiPasswordFile ?? { kind: 'default', name: 'default' };
  if (passwordFile !== null) {
    const label = pwSource.kind === 'file' ? `config file ${pwSource.name}: xapiPasswordFile` : pwSource.name;
    let st: FileStat;
    try {
      st = stat(passwordFile);
    } catch (err) {
      throw new ConfigError(`${label}: cannot read ${passwordFile}: ${fsReason(err)}`, { cause: err });
    }
    if (!st.isFile()) throw new ConfigError(`${label}: ${passwordFile} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new ConfigError(
        `${label}: ${passwordFile} is accessible by group or others (mode ${mode}); run chmod 600 on it`,
      );
    }
    let raw: string;
    try {
      raw = readFile(passwordFile);
    } catch (err) {
      // No cause: a reader error must not carry file contents anywhere.
      throw new ConfigError(`${label}: cannot read ${passwordFile}: ${fsReason(err)}`);
    }
    password = raw.endsWith('\r\n') ? raw.slice(0, -2) : raw.endsWith('\n') ? raw.slice(0, -1) : raw;
  }
  out.xapiPassword = password;
  sources.xapiPassword = pwSource;
  out.configFile = configFile;
  sources.configFile = configSpec
    ? { kind: explicitConfig ? 'cli' : 'env', name: configSpec.name }
    : { kind: configFile === null ? 'default' : 'file', name: configFile ?? 'default' };
  out.ovsRundir = rundir;
  sources.ovsRundir = rundirRaw !== undefined && rundirRaw !== '' ? { kind: 'env', name: 'OVS_RUNDIR' } : { kind: 'default', name: 'default' };

  return { kind: 'run', config: out as unknown as Config, sources: sources as ConfigSources };
}

export interface ReloadResult {
  /** The running config with reloadable settings updated; restart-only settings keep their old values. */
  readonly config: Config;
  readonly sources: ConfigSources;
  /** Reloadable settings whose value changed (now in effect). */
  readonly applied: readonly ConfigKey[];
  /** Settings that changed in the environment or file but take effect only after a restart. */
  readonly needsRestart: readonly ConfigKey[];
}

/**
 * SIGHUP semantics: re-read the environment and the config file with the same argv. Only
 * `RELOADABLE_KEYS` change in the returned config; others are listed in `needsRestart`. A config that
 * no longer validates throws `ConfigError` and the caller keeps running with `previous`.
 */
export function reloadConfig(previous: Config, previousSources: ConfigSources, options: LoadConfigOptions): ReloadResult {
  const result = loadConfig(options);
  if (result.kind !== 'run') throw new ConfigError('reload: the command line asks for --help or --version');
  const next: Record<string, unknown> = { ...previous };
  const sources: Record<string, ValueSource> = { ...previousSources };
  const applied: ConfigKey[] = [];
  const needsRestart: ConfigKey[] = [];
  for (const key of Object.keys(result.config) as ConfigKey[]) {
    if (JSON.stringify(result.config[key]) === JSON.stringify(previous[key])) continue;
    if (RELOADABLE_KEYS.has(key)) {
      next[key] = result.config[key];
      sources[key] = result.sources[key];
      applied.push(key);
    } else {
      needsRestart.push(key);
    }
  }
  return { config: next as unknown as Config, sources: sources as ConfigSources, applied, needsRestart };
}

/** The config as a plain object safe to log or show in `status`: the password is replaced. */
export function describeConfig(config: Config, sources?: ConfigSources): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config as unknown as Record<string, unknown>)) {
    const shown = key === 'xapiPassword' ? (value === '' ? '' : '[Redacted]') : value;
    const src = sources?.[key as ConfigKey];
    out[key] = src === undefined ? shown : { value: shown, from: src.kind === 'default' ? 'default' : `${src.kind} ${src.name}` };
  }
  return out;
}
