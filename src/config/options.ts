import { MANAGED_KEYS } from '../reconcile/changeset.js';
import {
  boolKind,
  defaultUnixctl,
  enumKind,
  healthKind,
  intKind,
  managedKeysKind,
  pidfileKind,
  remoteKind,
  stringKind,
  unixctlKind,
  xapiUrlKind,
  type Ctx,
  type Kind,
} from './kinds.js';
import { DEFAULT_HEALTH_PORT, ENV_PREFIX, LOG_LEVELS, PROGRAM_NAME, RELOADABLE_KEYS, type ConfigKey } from './schema.js';

/** The option table: one row per setting. `flag` = has a command-line option; `env`/`file` = settable there. */

export type Reload = 'live' | 'restart';

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

export const OPTIONS: readonly OptionSpec[] = [
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
