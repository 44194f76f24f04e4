import { parseArgs } from 'node:util';
import { boolKind, Invalid, quote, typeOf, type Ctx } from './kinds.js';
import { envName, FILE_KEYS, OPTIONS } from './options.js';
import { ConfigError, type SourceKind, type ValueSource } from './schema.js';

/**
 * The sources of values and their precedence (docs/design.md §6): command line > environment
 * (`OVS_XAPI_SYNC_<UPPER_SNAKE>`) > JSON config file (camelCase keys) > defaults. Each source becomes one
 * `Layer` of raw values; `resolveLayers` validates the first raw value per option.
 */

export interface Layer {
  readonly kind: SourceKind;
  readonly values: Map<string, { raw: unknown; name: string }>;
}

export interface ParsedArgs {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
}

export function fsReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return typeof code === 'string' ? code : 'unreadable';
}

/** How an error names a value's origin: the flag or variable, or the file and key. */
export function sourceLabel(source: ValueSource, key: string): string {
  return source.kind === 'file' ? `config file ${source.name}: ${key}` : source.name;
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

/** Parses the command line, including `--config`, `--help` and `--version`, which are not settings. */
export function parseCommandLine(args: readonly string[]): ParsedArgs {
  // `--pidfile[=FILE]` takes a value only in the `=` form (OVS convention); parseArgs has no optional
  // values, so a bare `--pidfile` becomes `--pidfile=` (empty = the default path) before parsing.
  const argv: string[] = [];
  let afterDashDash = false;
  for (const a of args) {
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
  try {
    const result = parseArgs({ args: argv, options: parseOptions, strict: true, allowPositionals: true });
    return { values: result.values, positionals: result.positionals };
  } catch (err) {
    throw new ConfigError(describeParseArgsError(err), { cause: err });
  }
}

export function commandLineLayer(parsed: ParsedArgs): Layer {
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
  return cli;
}

export function environmentLayer(env: Readonly<Record<string, string | undefined>>): Layer {
  const envLayer: Layer = { kind: 'env', values: new Map() };
  for (const o of OPTIONS) {
    if (!o.env) continue;
    const name = envName(o.key);
    const v = env[name];
    if (v !== undefined) envLayer.values.set(o.key, { raw: v, name });
  }
  return envLayer;
}

export interface ConfigFileLayer {
  readonly layer: Layer;
  /** The config file actually read, if any. */
  readonly configFile: string | null;
  /** Where the choice of file came from. */
  readonly source: ValueSource;
}

/**
 * Reads the file named by `--config`, else by `OVS_XAPI_SYNC_CONFIG`; a named file must be readable.
 * Without either, `defaultPath` is read when it exists.
 */
export function configFileLayer(
  parsed: ParsedArgs,
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string,
  defaultPath: string,
): ConfigFileLayer {
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
    try {
      text = readFile(defaultPath);
      configFile = defaultPath;
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== 'ENOENT') {
        throw new ConfigError(`config file ${defaultPath}: cannot read: ${fsReason(err)}`, { cause: err });
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
  const source: ValueSource = configSpec
    ? { kind: explicitConfig ? 'cli' : 'env', name: configSpec.name }
    : { kind: configFile === null ? 'default' : 'file', name: configFile ?? 'default' };
  return { layer: fileLayer, configFile, source };
}

/** Each option takes its value from the first layer that has one, else its default. */
export function resolveLayers(
  layers: readonly Layer[],
  ctx: Ctx,
): { out: Record<string, unknown>; sources: Record<string, ValueSource> } {
  const out: Record<string, unknown> = {};
  const sources: Record<string, ValueSource> = {};
  for (const o of OPTIONS) {
    let resolved = false;
    for (const layer of layers) {
      const entry = layer.values.get(o.key);
      if (entry === undefined) continue;
      const source: ValueSource = { kind: layer.kind, name: entry.name };
      try {
        out[o.key] = layer.kind === 'file' ? o.kind.fromJson(entry.raw, ctx) : o.kind.fromString(entry.raw as string, ctx);
      } catch (err) {
        if (err instanceof Invalid) throw new ConfigError(`${sourceLabel(source, o.key)}: ${err.message}`);
        throw err;
      }
      sources[o.key] = source;
      resolved = true;
      break;
    }
    if (!resolved) {
      out[o.key] = o.defaultValue(ctx);
      sources[o.key] = { kind: 'default', name: 'default' };
    }
  }
  return { out, sources };
}
