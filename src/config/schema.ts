import { CodedError } from '../errors.js';
import type { ManagedKey } from '../reconcile/changeset.js';

/** The shape of the configuration, where each value came from, and the one error every problem becomes. */

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
