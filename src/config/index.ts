/**
 * Typed configuration with one precedence rule (docs/design.md §6): command line > environment
 * (`OVS_XAPI_SYNC_<UPPER_SNAKE>`) > JSON config file (camelCase keys) > defaults.
 *
 * Everything here is a pure function of its inputs (argv, env, a file reader, the pid): no `process.*`.
 * Every problem is reported as one `ConfigError` whose message is a single line naming the option in
 * the form the operator used (`--xapi`, `OVS_XAPI_SYNC_XAPI`, `config file F: xapi`).
 *
 * This module is the public surface; the files beside it are internal.
 */

export {
  ConfigError,
  DEFAULT_CONFIG_PATH,
  DEFAULT_HEALTH_PORT,
  DEFAULT_OVS_RUNDIR,
  ENV_PREFIX,
  LOG_LEVELS,
  PROGRAM_NAME,
  RELOADABLE_KEYS,
  type Config,
  type ConfigKey,
  type ConfigSources,
  type FileStat,
  type HealthAddress,
  type LoadConfigOptions,
  type LoadResult,
  type LogLevelName,
  type SourceKind,
  type ValueSource,
  type XapiProtocol,
} from './schema.js';
export { parseHealthAddress } from './kinds.js';
export { envName, FILE_KEYS, optionTable } from './options.js';
export { helpText, packageVersion } from './help.js';
export { describeConfig, loadConfig, reloadConfig, type ReloadResult } from './load.js';
