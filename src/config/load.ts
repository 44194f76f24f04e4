import { readFileSync, statSync } from 'node:fs';
import { helpText, packageVersion } from './help.js';
import type { Ctx } from './kinds.js';
import {
  ConfigError,
  DEFAULT_CONFIG_PATH,
  DEFAULT_OVS_RUNDIR,
  PROGRAM_NAME,
  RELOADABLE_KEYS,
  type Config,
  type ConfigKey,
  type ConfigSources,
  type FileStat,
  type LoadConfigOptions,
  type LoadResult,
  type ValueSource,
} from './schema.js';
import { commandLineLayer, configFileLayer, environmentLayer, fsReason, parseCommandLine, resolveLayers, sourceLabel } from './sources.js';

/** Loading the configuration at startup, reloading it on SIGHUP, and showing it without secrets. */

const defaultStat = (path: string): FileStat => statSync(path);
const defaultReadFile = (path: string): string => readFileSync(path, 'utf8');

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

  const parsed = parseCommandLine(options.argv);
  if (parsed.values.help === true) return { kind: 'help', text: helpText() };
  if (parsed.values.version === true) {
    return { kind: 'version', text: `${PROGRAM_NAME} (Open vSwitch compatible) ${options.version ?? packageVersion()}\n` };
  }
  const cli = commandLineLayer(parsed);
  const envLayer = environmentLayer(env);
  const file = configFileLayer(parsed, env, readFile, options.defaultConfigPath ?? DEFAULT_CONFIG_PATH);
  const { out, sources } = resolveLayers([cli, envLayer, file.layer], ctx);

  const pwSource = sources.xapiPasswordFile ?? { kind: 'default', name: 'default' };
  out.xapiPassword = readPassword(out.xapiPasswordFile as string | null, sourceLabel(pwSource, 'xapiPasswordFile'), readFile, stat);
  sources.xapiPassword = pwSource;
  out.configFile = file.configFile;
  sources.configFile = file.source;
  out.ovsRundir = rundir;
  sources.ovsRundir = rundirRaw !== undefined && rundirRaw !== '' ? { kind: 'env', name: 'OVS_RUNDIR' } : { kind: 'default', name: 'default' };

  return { kind: 'run', config: out as unknown as Config, sources: sources as ConfigSources };
}

/** The password ("" without a file); a file that others can read is refused. */
function readPassword(
  passwordFile: string | null,
  label: string,
  readFile: (path: string) => string,
  stat: (path: string) => FileStat,
): string {
  if (passwordFile === null) return '';
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
  return raw.endsWith('\r\n') ? raw.slice(0, -2) : raw.endsWith('\n') ? raw.slice(0, -1) : raw;
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
