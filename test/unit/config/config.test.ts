import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  envName,
  FILE_KEYS,
  loadConfig,
  optionTable,
  reloadConfig,
  describeConfig,
} from '../../../src/config/index.js';
import type { Config, ConfigKey, FileStat, LoadConfigOptions } from '../../../src/config/index.js';
import { MANAGED_KEYS } from '../../../src/reconcile/changeset.js';

const PID = 4242;

/** An in-memory file system: path → { text, mode }. */
function fakeFs(files: Record<string, { text: string; mode?: number } | string>): Pick<LoadConfigOptions, 'readFile' | 'stat'> {
  const get = (path: string): { text: string; mode: number } => {
    const f = files[path];
    if (f === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return typeof f === 'string' ? { text: f, mode: 0o100644 } : { text: f.text, mode: f.mode ?? 0o100644 };
  };
  return {
    readFile: (path) => get(path).text,
    stat: (path): FileStat => {
      const f = get(path);
      return { mode: f.mode, isFile: () => true };
    },
  };
}

function load(
  argv: string[] = [],
  env: Record<string, string> = {},
  file?: Record<string, unknown>,
  extraFiles: Record<string, { text: string; mode?: number } | string> = {},
) {
  const files: Record<string, { text: string; mode?: number } | string> = { ...extraFiles };
  if (file !== undefined) files['/etc/x.json'] = JSON.stringify(file);
  const r = loadConfig({ argv, env, pid: PID, defaultConfigPath: '/etc/x.json', version: '1.2.3', ...fakeFs(files) });
  if (r.kind !== 'run') throw new Error(`unexpected ${r.kind}`);
  return r;
}

function loadError(argv: string[], env: Record<string, string> = {}, file?: unknown, extraFiles = {}): ConfigError {
  const files: Record<string, { text: string; mode?: number } | string> = { ...extraFiles };
  if (file !== undefined) files['/etc/x.json'] = typeof file === 'string' ? file : JSON.stringify(file);
  try {
    loadConfig({ argv, env, pid: PID, defaultConfigPath: '/etc/x.json', ...fakeFs(files) });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).not.toContain('\n');
    return e;
  }
  throw new Error('expected a ConfigError');
}

/**
 * Two distinct valid values per option (string form for argv/env, JSON form for the file) and what
 * each parses to. `flag: null` = no command-line option; `'bool'` = a boolean flag (presence = true).
 */
interface Case {
  /** A flag like `--xapi`, `'positional'` for DATABASE, `null` when there is no command-line option. */
  flag: string | null;
  v1: string;
  v2: string;
  j1: unknown;
  j2: unknown;
  e1: unknown;
  e2: unknown;
  boolFlag?: boolean;
  envOnly?: false;
}
const same = (flag: Case['flag'], v1: string, v2: string): Case => ({ flag, v1, v2, j1: v1, j2: v2, e1: v1, e2: v2 });
const int = (v1: number, v2: number): Case => ({ flag: null, v1: String(v1), v2: String(v2), j1: v1, j2: v2, e1: v1, e2: v2 });
const bool = (flag: string | null): Case => ({ flag, v1: 'true', v2: 'false', j1: true, j2: false, e1: true, e2: false, boolFlag: true });

const CASES: Record<string, Case> = {
  database: same('positional', 'tcp:127.0.0.1:6640', 'unix:/run/db.sock'),
  xapi: same('--xapi', 'https://pool.example:443', 'unix:/tmp/xapi'),
  xapiProtocol: same('--xapi-protocol', 'jsonrpc', 'xmlrpc'),
  xapiUser: same('--xapi-user', 'root', 'admin'),
  xapiPasswordFile: same('--xapi-password-file', '/secret/a', '/secret/b'),
  rootPrefix: same('--root-prefix', '/tmp/root', '/tmp/other'),
  health: {
    flag: '--health',
    v1: '[::1]:9999',
    v2: 'off',
    j1: '[::1]:9999',
    j2: 'off',
    e1: { host: '::1', port: 9999 },
    e2: null,
  },
  unixctl: { flag: '--unixctl', v1: '/tmp/a.ctl', v2: 'rel.ctl', j1: '/tmp/a.ctl', j2: 'rel.ctl', e1: '/tmp/a.ctl', e2: '/rd/rel.ctl' },
  pidfile: { flag: '--pidfile', v1: '/tmp/p.pid', v2: 'true', j1: '/tmp/p.pid', j2: true, e1: '/tmp/p.pid', e2: '/rd/ovs-xapi-sync.pid' },
  logLevel: same('--log-level', 'trace', 'warn'),
  dryRun: bool('--dry-run'),
  systemId: same(null, 'abc-123', 'def-456'),
  enableStatistics: bool(null),
  managedKeys: {
    flag: null,
    v1: 'vm-id, iface-id',
    v2: 'fail_mode',
    j1: ['vm-id', 'iface-id', 'vm-id'],
    j2: ['fail_mode'],
    e1: ['iface-id', 'vm-id'],
    e2: ['fail_mode'],
  },
  // On by default, so the first value is the one that differs from the default.
  neutronPortUuid: { flag: null, v1: 'false', v2: 'true', j1: false, j2: true, e1: false, e2: true },
  resyncIntervalSec: int(0, 30),
  xapiCaFile: same(null, '/ca/a.pem', '/ca/b.pem'),
  xapiInsecure: bool(null),
  xapiCallTimeoutMs: int(5000, 7000),
  xapiEventTimeoutSec: int(45, 60),
  xapiLookupBatchSize: int(10, 20),
  ovsdbProbeIntervalMs: int(0, 10_000),
  ovsdbRequestTimeoutMs: int(2000, 3000),
  ovsdbMaxMessageBytes: int(1_048_576, 2_097_152),
  logJournaldPrefix: bool(null),
  retryMaxDelayMs: int(1000, 2000),
  shutdownTimeoutMs: int(1000, 2000),
};

const secretFiles = {
  '/secret/a': { text: 'pw-a\n', mode: 0o100600 },
  '/secret/b': { text: 'pw-b\n', mode: 0o100600 },
};
const RD = { OVS_RUNDIR: '/rd' };

function cliArgs(c: Case, value: string): string[] {
  if (c.flag === 'positional') return [value];
  if (c.flag === '--pidfile') return [value === 'true' ? '--pidfile' : `--pidfile=${value}`];
  if (c.boolFlag === true) return value === 'true' ? [c.flag as string] : [];
  return [c.flag as string, value];
}

describe('precedence: command line > environment > config file > default', () => {
  it('the table covers every option', () => {
    const keys = optionTable().map((o) => o.key).filter((k) => k !== 'once');
    expect(Object.keys(CASES).sort()).toEqual(keys.sort());
  });

  for (const [key, c] of Object.entries(CASES)) {
    const k = key as ConfigKey;
    it(`${key}: default, file beats default, env beats file${c.flag !== null ? ', cli beats env' : ''}`, () => {
      const base = load([], RD, undefined, secretFiles);
      expect(base.sources[k]).toEqual({ kind: 'default', name: 'default' });
      expect(base.config[k]).not.toEqual(c.e1);

      const fromFile = load([], RD, { [key]: c.j1 }, secretFiles);
      expect(fromFile.config[k]).toEqual(c.e1);
      expect(fromFile.sources[k]).toEqual({ kind: 'file', name: '/etc/x.json' });

      const fromEnv = load([], { ...RD, [envName(key)]: c.v2 }, { [key]: c.j1 }, secretFiles);
      expect(fromEnv.config[k]).toEqual(c.e2);
      expect(fromEnv.sources[k]).toEqual({ kind: 'env', name: envName(key) });

      if (c.flag !== null) {
        const fromCli = load(cliArgs(c, c.v1), { ...RD, [envName(key)]: c.v2 }, { [key]: c.j2 }, secretFiles);
        expect(fromCli.config[k]).toEqual(c.e1);
        expect(fromCli.sources[k].kind).toBe('cli');
      }
    });
  }

  it('--once is command-line only', () => {
    expect(load(['--once']).config.once).toBe(true);
    expect(load([]).config.once).toBe(false);
    expect(loadError([], {}, { once: true }).message).toMatch(/unknown key "once"/);
  });

  it('defaults', () => {
    const { config } = load([], {});
    expect(config).toMatchObject<Partial<Config>>({
      database: 'unix:/var/run/openvswitch/db.sock',
      xapi: 'unix:/var/lib/xcp/xapi',
      xapiProtocol: 'auto',
      xapiUser: '',
      xapiPassword: '',
      xapiPasswordFile: null,
      rootPrefix: '',
      configFile: null,
      health: { host: '127.0.0.1', port: 9720 },
      unixctl: `/var/run/openvswitch/ovs-xapi-sync.${PID}.ctl`,
      pidfile: null,
      logLevel: 'info',
      once: false,
      dryRun: false,
      systemId: null,
      enableStatistics: false,
      managedKeys: [...MANAGED_KEYS],
      neutronPortUuid: true,
      resyncIntervalSec: 600,
      logJournaldPrefix: false,
      ovsRundir: '/var/run/openvswitch',
    });
    expect(load([], { JOURNAL_STREAM: '8:1234' }).config.logJournaldPrefix).toBe(true);
    expect(load([], { OVS_RUNDIR: '/tmp/rd' }).config.unixctl).toBe(`/tmp/rd/ovs-xapi-sync.${PID}.ctl`);
  });

  it('--pidfile without a value is the default path; env "off" means none', () => {
    expect(load(['--pidfile'], RD).config.pidfile).toBe('/rd/ovs-xapi-sync.pid');
    expect(load(['--pidfile', 'tcp:1.2.3.4:6640'], RD).config).toMatchObject({ pidfile: '/rd/ovs-xapi-sync.pid', database: 'tcp:1.2.3.4:6640' });
    expect(load([], { ...RD, OVS_XAPI_SYNC_PIDFILE: 'off' }, { pidfile: true }).config.pidfile).toBeNull();
  });
});

describe('invalid values: one line naming the option', () => {
  const cases: [string, string[], Record<string, string>, unknown, RegExp][] = [
    ['unknown flag', ['--nope'], {}, undefined, /^--nope: unknown option/],
    ['missing value', ['--xapi'], {}, undefined, /^--xapi: missing value/],
    ['two positionals', ['unix:/a', 'unix:/b'], {}, undefined, /^DATABASE: expected at most one/],
    ['bad remote', ['foo'], {}, undefined, /^DATABASE: invalid OVSDB remote "foo"/],
    ['ssl remote', ['ssl:1.2.3.4:6640'], {}, undefined, /^DATABASE: .*not supported yet/],
    ['bad tcp port', ['tcp:1.2.3.4:99999'], {}, undefined, /^DATABASE: .*out of range/],
    ['env remote', [], { OVS_XAPI_SYNC_DATABASE: 'tcp:host' }, undefined, /^OVS_XAPI_SYNC_DATABASE: .*missing ":PORT"/],
    ['bad xapi scheme', ['--xapi', 'ftp://x'], {}, undefined, /^--xapi: unsupported scheme "ftp:"/],
    ['xapi creds in URL', ['--xapi', 'https://u:p@x'], {}, undefined, /^--xapi: credentials in the URL/],
    ['bad protocol', ['--xapi-protocol', 'soap'], {}, undefined, /^--xapi-protocol: expected one of auto, jsonrpc, xmlrpc, got "soap"/],
    ['bad health', ['--health', 'nowhere'], {}, undefined, /^--health: expected ADDR:PORT/],
    ['health v6 no brackets', ['--health', '::1:80'], {}, undefined, /^--health: an IPv6 address must be written in brackets/],
    ['health port', ['--health', '127.0.0.1:70000'], {}, undefined, /^--health: port "70000"/],
    ['bad log level', ['--log-level', 'verbose'], {}, undefined, /^--log-level: expected one of trace, debug/],
    ['env log level', [], { OVS_XAPI_SYNC_LOG_LEVEL: 'loud' }, undefined, /^OVS_XAPI_SYNC_LOG_LEVEL: expected one of/],
    ['env bool', [], { OVS_XAPI_SYNC_DRY_RUN: 'maybe' }, undefined, /^OVS_XAPI_SYNC_DRY_RUN: expected true or false/],
    ['env int', [], { OVS_XAPI_SYNC_RESYNC_INTERVAL_SEC: '10m' }, undefined, /^OVS_XAPI_SYNC_RESYNC_INTERVAL_SEC: expected an integer/],
    ['event timeout range', [], { OVS_XAPI_SYNC_XAPI_EVENT_TIMEOUT_SEC: '10' }, undefined, /^OVS_XAPI_SYNC_XAPI_EVENT_TIMEOUT_SEC: 10 is out of range 30-60/],
    ['file unknown key', [], {}, { logLevl: 'info' }, /^config file \/etc\/x.json: unknown key "logLevl"/],
    ['file wrong type', [], {}, { resyncIntervalSec: '600' }, /^config file \/etc\/x.json: resyncIntervalSec: expected a number, got string/],
    ['file bool type', [], {}, { enableStatistics: 'yes' }, /^config file \/etc\/x.json: enableStatistics: expected a boolean, got string/],
    ['file non-integer', [], {}, { xapiLookupBatchSize: 1.5 }, /xapiLookupBatchSize: expected an integer, got 1.5/],
    ['file string type', [], {}, { xapi: 5 }, /^config file \/etc\/x.json: xapi: expected a string, got number/],
    ['file not an object', [], {}, [1], /^config file \/etc\/x.json: expected a JSON object, got array/],
    ['file not JSON', [], {}, '{"a":', /^config file \/etc\/x.json: not valid JSON/],
    ['explicit config missing', ['--config', '/nope.json'], {}, undefined, /^--config: cannot read \/nope.json: no such file/],
    ['env config missing', [], { OVS_XAPI_SYNC_CONFIG: '/nope.json' }, undefined, /^OVS_XAPI_SYNC_CONFIG: cannot read/],
    ['password file missing', ['--xapi-password-file', '/nope'], {}, undefined, /^--xapi-password-file: cannot read \/nope: no such file/],
    ['system id space', [], { OVS_XAPI_SYNC_SYSTEM_ID: 'a b' }, undefined, /^OVS_XAPI_SYNC_SYSTEM_ID: .*white space/],
    ['managed key unknown (file)', [], {}, { managedKeys: ['iface-id', 'iface_id'] }, /^config file \/etc\/x.json: managedKeys: unknown key "iface_id" \(known keys: system-id, /],
    ['managed key unknown (env)', [], { OVS_XAPI_SYNC_MANAGED_KEYS: 'vm-id,Iface-Id,bridge' }, undefined, /^OVS_XAPI_SYNC_MANAGED_KEYS: unknown key "Iface-Id", "bridge" /],
    ['managed keys not an array', [], {}, { managedKeys: 'iface-id' }, /^config file \/etc\/x.json: managedKeys: expected an array of key names, got string/],
    ['managed key not a string', [], {}, { managedKeys: ['vm-id', 3] }, /^config file \/etc\/x.json: managedKeys: expected an array of key names, got an array holding number/],
    ['managed keys empty (file)', [], {}, { managedKeys: [] }, /^config file \/etc\/x.json: managedKeys: names no key/],
    ['managed keys empty (env)', [], { OVS_XAPI_SYNC_MANAGED_KEYS: ' , ' }, undefined, /^OVS_XAPI_SYNC_MANAGED_KEYS: names no key/],
    ['neutronPortUuid type', [], {}, { neutronPortUuid: 'no' }, /^config file \/etc\/x.json: neutronPortUuid: expected a boolean, got string/],
  ];
  for (const [name, argv, env, file, re] of cases) {
    it(name, () => {
      expect(loadError(argv, env, file).message).toMatch(re);
    });
  }

  it('the default config path is optional, but readable when present', () => {
    expect(load([]).config.configFile).toBeNull();
    expect(load([], {}, { logLevel: 'warn' }).config.configFile).toBe('/etc/x.json');
  });
});

describe('the password file', () => {
  it('is read, one trailing newline stripped, never shown', () => {
    const files = { '/pw': { text: 's3cret\n\n', mode: 0o100600 } };
    const r = load(['--xapi-password-file', '/pw'], {}, undefined, files);
    expect(r.config.xapiPassword).toBe('s3cret\n');
    expect(JSON.stringify(r.sources)).not.toContain('s3cret');
    expect(JSON.stringify(describeConfig(r.config, r.sources))).not.toContain('s3cret');
    expect(describeConfig(r.config).xapiPassword).toBe('[Redacted]');
  });

  for (const mode of [0o100644, 0o100640, 0o100604, 0o100660, 0o100700 | 0o010]) {
    it(`is refused with mode ${(mode & 0o777).toString(8)}`, () => {
      const e = loadError(['--xapi-password-file', '/pw'], {}, undefined, { '/pw': { text: 'TOPSECRET', mode } });
      expect(e.message).toMatch(/^--xapi-password-file: \/pw is accessible by group or others \(mode 0\d{3}\); run chmod 600/);
      expect(e.message).not.toContain('TOPSECRET');
    });
  }

  it('from the config file, the error names the key', () => {
    const e = loadError([], {}, { xapiPasswordFile: '/pw' }, { '/pw': { text: 'x', mode: 0o100644 } });
    expect(e.message).toMatch(/^config file \/etc\/x.json: xapiPasswordFile: \/pw is accessible/);
  });
});

describe('help and version', () => {
  it('--help lists every option with its default', () => {
    const r = loadConfig({ argv: ['--help'], env: {}, pid: 1, ...fakeFs({}) });
    expect(r.kind).toBe('help');
    const text = r.kind === 'help' ? r.text : '';
    for (const o of optionTable()) {
      if (o.flag !== null) expect(text).toContain(o.flag.startsWith('--pidfile') ? '--pidfile[=FILE]' : o.flag);
      else expect(text).toContain(o.key);
      expect(text).toContain(o.defaultText);
    }
    for (const f of ['--config FILE', '--version', '--help']) expect(text).toContain(f);
  });

  it('--version / -V', () => {
    expect(loadConfig({ argv: ['-V'], env: {}, pid: 1, version: '1.2.3', ...fakeFs({}) })).toEqual({
      kind: 'version',
      text: 'ovs-xapi-sync (Open vSwitch compatible) 1.2.3\n',
    });
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string };
    const r = loadConfig({ argv: ['--version'], env: {}, pid: 1, ...fakeFs({}) });
    expect(r.kind === 'version' ? r.text : '').toContain(pkg.version);
  });
});

describe('reload (SIGHUP)', () => {
  it('applies reloadable settings, reports the others', () => {
    const first = load(['--xapi-user', 'root'], { OVS_XAPI_SYNC_LOG_LEVEL: 'info' }, { resyncIntervalSec: 600, xapiProtocol: 'xmlrpc' });
    const r = reloadConfig(first.config, first.sources, {
      argv: ['--xapi-user', 'root'],
      env: { OVS_XAPI_SYNC_LOG_LEVEL: 'debug' },
      pid: PID,
      defaultConfigPath: '/etc/x.json',
      ...fakeFs({ '/etc/x.json': JSON.stringify({ resyncIntervalSec: 60, xapiProtocol: 'jsonrpc', systemId: 'override' }) }),
    });
    expect(r.applied.slice().sort()).toEqual(['logLevel', 'resyncIntervalSec', 'systemId']);
    expect(r.needsRestart).toEqual(['xapiProtocol']);
    expect(r.config).toMatchObject({ logLevel: 'debug', resyncIntervalSec: 60, systemId: 'override', xapiProtocol: 'xmlrpc' });
    expect(r.sources.logLevel.kind).toBe('env');
  });

  it('managedKeys and neutronPortUuid need a restart', () => {
    const first = load([]);
    const r = reloadConfig(first.config, first.sources, {
      argv: [],
      env: {},
      pid: PID,
      defaultConfigPath: '/etc/x.json',
      ...fakeFs({ '/etc/x.json': JSON.stringify({ managedKeys: ['vm-id'], neutronPortUuid: false }) }),
    });
    expect(r.applied).toEqual([]);
    expect(r.needsRestart.filter((k) => k !== 'configFile').sort()).toEqual(['managedKeys', 'neutronPortUuid']);
    expect(r.config.managedKeys).toEqual(MANAGED_KEYS);
    expect(r.config.neutronPortUuid).toBe(true);
  });

  it('an invalid file on reload throws; the caller keeps the old config', () => {
    const first = load([]);
    expect(() =>
      reloadConfig(first.config, first.sources, {
        argv: [],
        env: {},
        pid: PID,
        defaultConfigPath: '/etc/x.json',
        ...fakeFs({ '/etc/x.json': '{"bogus":1}' }),
      }),
    ).toThrow(ConfigError);
  });
});

describe('the example config', () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  it('config/ovs-xapi-sync.json loads and sets every file key', () => {
    const path = `${root}config/ovs-xapi-sync.json`;
    const text = readFileSync(path, 'utf8');
    const json = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(json).sort()).toEqual([...FILE_KEYS].sort());
    // The example names a password file that does not exist here; point it at a private one.
    const pw = { text: 'x\n', mode: 0o100600 };
    const r = loadConfig({
      argv: ['--config', path],
      env: {},
      pid: PID,
      readFile: (p) => (p === path ? text : p === json.xapiPasswordFile ? pw.text : readFileSync(p, 'utf8')),
      stat: (p) => ({ mode: p === json.xapiPasswordFile ? pw.mode : 0o100600, isFile: () => true }),
    });
    expect(r.kind).toBe('run');
  });

  it('config/README.md documents every option and its env var', () => {
    const readme = readFileSync(`${root}config/README.md`, 'utf8');
    for (const o of optionTable()) {
      expect(readme).toContain(`\`${o.key}\``);
      if (o.env !== null) expect(readme).toContain(o.env);
    }
  });
});
