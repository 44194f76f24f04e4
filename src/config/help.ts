import { readFileSync } from 'node:fs';
import { envName, OPTIONS } from './options.js';
import { DEFAULT_CONFIG_PATH, PROGRAM_NAME, RELOADABLE_KEYS } from './schema.js';

/** What `--help` and `--version` print. */

let cachedVersion: string | undefined;

/** The package version from package.json, two levels up from src/config, dist/config and the bundle's dist/bin alike. */
export function packageVersion(): string {
  if (cachedVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
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
