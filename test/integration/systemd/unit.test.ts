import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_ENV, DAEMON_NODE_ARGS } from '../../../src/sandbox/host.js';

/**
 * The shipped unit must (1) pass `systemd-analyze verify` of the local systemd with no warning, base
 * unit alone and with the hardening drop-in, and (2) use only directives that systemd 219 — the dom0
 * systemd (docs/platform.md §1) — knows, because `verify` checks against the local (newer)
 * systemd and cannot see what 219 lacks (§1.5). Newer keys are allowed only in the guarded drop-in.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const UNIT = join(ROOT, 'systemd/ovs-xapi-sync.service');
const DROP_IN = join(ROOT, 'systemd/ovs-xapi-sync.service.d/10-hardening.conf');
const SYSCONFIG = join(ROOT, 'systemd/sysconfig.example');
/** What /usr/sbin/ovs-xapi-sync links to in the package (scripts/package/build.sh). */
const LAUNCHER = join(ROOT, 'scripts/package/launcher');

/**
 * Every directive the base unit may use, with its section and the systemd version that introduced it
 * (systemd NEWS; "38" means it predates the oldest NEWS entry, v38). All must be ≤ 219.
 */
const DIRECTIVES_219: Readonly<Record<string, { section: string; since: number }>> = {
  Description: { section: 'Unit', since: 38 },
  Documentation: { section: 'Unit', since: 38 },
  Wants: { section: 'Unit', since: 38 },
  After: { section: 'Unit', since: 38 },
  Conflicts: { section: 'Unit', since: 38 },
  Type: { section: 'Service', since: 38 },
  NotifyAccess: { section: 'Service', since: 38 },
  EnvironmentFile: { section: 'Service', since: 38 },
  Environment: { section: 'Service', since: 38 },
  ExecStart: { section: 'Service', since: 38 },
  ExecReload: { section: 'Service', since: 38 },
  SyslogIdentifier: { section: 'Service', since: 38 },
  WatchdogSec: { section: 'Service', since: 42 }, // NEWS 40–42: service watchdog support
  TimeoutStartSec: { section: 'Service', since: 188 },
  TimeoutStopSec: { section: 'Service', since: 188 },
  Restart: { section: 'Service', since: 38 },
  RestartSec: { section: 'Service', since: 38 },
  RestartPreventExitStatus: { section: 'Service', since: 189 },
  StartLimitInterval: { section: 'Service', since: 38 }, // moved to [Unit] in 229; [Service] still read
  StartLimitBurst: { section: 'Service', since: 38 },
  UMask: { section: 'Service', since: 38 },
  NoNewPrivileges: { section: 'Service', since: 187 },
  ProtectSystem: { section: 'Service', since: 214 },
  ProtectHome: { section: 'Service', since: 214 },
  PrivateTmp: { section: 'Service', since: 38 },
  PrivateDevices: { section: 'Service', since: 209 },
  RestrictAddressFamilies: { section: 'Service', since: 211 },
  SystemCallArchitectures: { section: 'Service', since: 209 },
  ReadWriteDirectories: { section: 'Service', since: 38 }, // renamed ReadWritePaths= in 231
  CapabilityBoundingSet: { section: 'Service', since: 38 },
  WantedBy: { section: 'Install', since: 38 },
};

/** Keys newer than 219 that the drop-in may use; its documented minimum is systemd 245. */
const DROP_IN_MODERN: Readonly<Record<string, number>> = {
  ReadWritePaths: 231,
  ProtectKernelTunables: 232,
  ProtectKernelModules: 232,
  ProtectControlGroups: 232,
  MemoryDenyWriteExecute: 231,
  RestrictRealtime: 231,
  RestrictNamespaces: 233,
  LockPersonality: 235,
  PrivateMounts: 239,
  RestrictSUIDSGID: 242,
  ProtectHostname: 242,
  ProtectKernelLogs: 244,
  ProtectClock: 245,
  SystemCallFilter: 187, // allowed in the drop-in only as a "~" deny-list (see the test below)
  SystemCallErrorNumber: 209,
};

/** Settings that must never appear in the base unit: unknown to or dangerous on 219 (§1.3). */
const DENY_BASE: readonly RegExp[] = [
  /^ProtectSystem=strict$/,
  /^SystemCallFilter=/,
  /^MemoryDenyWriteExecute=/,
  /^Type=exec$/,
  /^ReadWritePaths=/,
  /^StateDirectory=/,
  /^StartLimitIntervalSec=/,
  /^Requires=/,
  /^BindsTo=/,
  /^LoadCredential=/,
];

interface Directive {
  readonly section: string;
  readonly key: string;
  readonly value: string;
  readonly line: number;
}

function parseUnit(text: string): Directive[] {
  const out: Directive[] = [];
  let section = '';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`line ${i + 1}: not a directive: ${line}`);
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), line: i + 1 });
  });
  return out;
}

function valueOf(directives: readonly Directive[], key: string, section = 'Service'): string[] {
  return directives.filter((d) => d.key === key && d.section === section).map((d) => d.value);
}

function analyzeAvailable(): boolean {
  return spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
}

describe('systemd-analyze verify', () => {
  let dir: string;
  let unitDir: string;
  let stubDir: string;

  beforeAll(() => {
    if (!analyzeAvailable()) {
      throw new Error('systemd-analyze not found: install systemd (apt-get install systemd) to lint the unit file');
    }
    dir = mkdtempSync(join(tmpdir(), 'oxs-unit-'));
    unitDir = join(dir, 'units');
    stubDir = join(dir, 'stubs');
    mkdirSync(unitDir);
    mkdirSync(stubDir);
    for (const name of ['openvswitch.service', 'xapi.service']) {
      writeFileSync(join(stubDir, name), '[Unit]\nDescription=stub\n[Service]\nExecStart=/bin/true\n');
    }
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Copies the unit with ExecStart's binary swapped for one that exists here (node itself). */
  function stage(withDropIn: boolean, extra = ''): string {
    const text = readFileSync(UNIT, 'utf8').replace(/^ExecStart=(\S+)/m, `ExecStart=${process.execPath}`);
    const target = join(unitDir, 'ovs-xapi-sync.service');
    writeFileSync(target, text + extra);
    const dropDir = join(unitDir, 'ovs-xapi-sync.service.d');
    rmSync(dropDir, { recursive: true, force: true });
    if (withDropIn) {
      mkdirSync(dropDir);
      copyFileSync(DROP_IN, join(dropDir, '10-hardening.conf'));
    }
    return target;
  }

  function verify(path: string): { status: number | null; output: string } {
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', path], {
      encoding: 'utf8',
      env: { ...process.env, SYSTEMD_UNIT_PATH: `${stubDir}:${unitDir}:`, SYSTEMD_LOG_COLOR: '0' },
    });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  }

  const WARNING = /Unknown|ignoring|Failed|not found|Invalid|not executable|is deprecated/i;

  it('passes for the base unit, with no warnings', () => {
    const r = verify(stage(false));
    expect(r.output).not.toMatch(WARNING);
    expect(r.status, r.output).toBe(0);
  });

  it('passes for the base unit plus the hardening drop-in, with no warnings', () => {
    const r = verify(stage(true));
    expect(r.output).not.toMatch(WARNING);
    expect(r.status, r.output).toBe(0);
  });

  it('would catch an unknown key (control for the two checks above)', () => {
    const r = verify(stage(false, '\n[Service]\nWatchDogSecs=30\n'));
    expect(r.output).toMatch(/Unknown key 'WatchDogSecs'/);
  });
});

describe('base unit vocabulary (systemd 219)', () => {
  const directives = parseUnit(readFileSync(UNIT, 'utf8'));

  it('uses only directives known to systemd 219, in their 219 section', () => {
    expect(directives.length).toBeGreaterThan(20);
    for (const d of directives) {
      const known = DIRECTIVES_219[d.key];
      expect(known, `line ${d.line}: ${d.key}= is not in the 219 allow-list`).toBeDefined();
      expect(known!.since, d.key).toBeLessThanOrEqual(219);
      expect(d.section, `line ${d.line}: ${d.key}=`).toBe(known!.section);
    }
  });

  it('contains nothing from the deny-list', () => {
    for (const d of directives) {
      for (const bad of DENY_BASE) expect(`${d.key}=${d.value}`, `line ${d.line}`).not.toMatch(bad);
    }
  });

  it('has the settings the daemon relies on', () => {
    expect(valueOf(directives, 'Type')).toEqual(['notify']);
    expect(valueOf(directives, 'NotifyAccess')).toEqual(['main']);
    expect(valueOf(directives, 'WatchdogSec')).toEqual(['30']);
    expect(valueOf(directives, 'Restart')).toEqual(['on-failure']);
    expect(valueOf(directives, 'RestartSec')).toEqual(['5']);
    expect(valueOf(directives, 'StartLimitInterval')).toHaveLength(1);
    expect(valueOf(directives, 'StartLimitBurst')).toHaveLength(1);
    expect(valueOf(directives, 'TimeoutStopSec')).toHaveLength(1);
    expect(valueOf(directives, 'UMask')).toEqual(['0077']);
    expect(valueOf(directives, 'EnvironmentFile')).toEqual(['-/etc/sysconfig/ovs-xapi-sync']);
    expect(valueOf(directives, 'ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    const exec = valueOf(directives, 'ExecStart');
    expect(exec).toHaveLength(1);
    expect(exec[0]).toMatch(/ --pidfile( |$)/);
    expect(exec[0]).toMatch(/ --config \/etc\/ovs-xapi-sync\/config\.json( |$)/);
    expect(exec[0]).toMatch(/^\/usr\/sbin\/ovs-xapi-sync /);
    expect(valueOf(directives, 'Conflicts', 'Unit')).toEqual(['openvswitch-xapi-sync.service']);
    const environment = valueOf(directives, 'Environment');
    for (const [name, value] of Object.entries(DAEMON_ENV)) expect(environment).toContain(`${name}=${value}`);
    for (const key of ['Wants', 'After']) {
      const units = valueOf(directives, key, 'Unit').join(' ').split(/\s+/);
      expect(units, key).toContain('openvswitch.service');
      expect(units, key).toContain('xapi.service');
    }
    expect(valueOf(directives, 'ProtectSystem')).toEqual(['full']);
    expect(valueOf(directives, 'ProtectHome')).toEqual(['yes']);
    expect(valueOf(directives, 'PrivateTmp')).toEqual(['yes']);
    expect(valueOf(directives, 'NoNewPrivileges')).toEqual(['yes']);
    expect(valueOf(directives, 'RestrictAddressFamilies')).toEqual(['AF_UNIX AF_INET AF_INET6']);
    expect(valueOf(directives, 'SystemCallArchitectures')).toEqual(['native']);
    expect(valueOf(directives, 'ReadWriteDirectories').join(' ')).toContain('/var/run/openvswitch');
    expect(valueOf(directives, 'WantedBy', 'Install')).toEqual(['multi-user.target']);
  });
});

describe('the packaged command', () => {
  it('starts the bundled node with the same V8 options as the tests and the benchmark', () => {
    // The kernel passes everything after the interpreter on a #! line as ONE argument, so the launcher
    // can carry one node option at most: a second one in DAEMON_NODE_ARGS must fail here.
    const shebang = /^#!(\S+)(?: (.*))?$/.exec(readFileSync(LAUNCHER, 'utf8').split('\n')[0] ?? '');
    expect(shebang?.[1]).toBe('/opt/ovs-xapi-sync/bin/node');
    expect(shebang?.[2] === undefined ? [] : [shebang[2]]).toEqual([...DAEMON_NODE_ARGS]);
  });
});

describe('hardening drop-in', () => {
  const text = readFileSync(DROP_IN, 'utf8');
  const directives = parseUnit(text);

  it('is documented as optional and for systemd >= 245 only', () => {
    expect(text).toMatch(/OPTIONAL/);
    expect(text).toMatch(/systemd >= 245/);
    expect(text).toMatch(/systemd 219/);
  });

  it('uses only [Service] keys from the modern list or the 219 list', () => {
    expect(directives.length).toBeGreaterThan(5);
    for (const d of directives) {
      expect(d.section, `line ${d.line}`).toBe('Service');
      const since = DROP_IN_MODERN[d.key] ?? DIRECTIVES_219[d.key]?.since;
      expect(since, `line ${d.line}: ${d.key}= is in neither list`).toBeDefined();
      expect(since!, d.key).toBeLessThanOrEqual(245);
    }
  });

  it('never enables MemoryDenyWriteExecute and filters syscalls only by deny-list', () => {
    for (const v of valueOf(directives, 'MemoryDenyWriteExecute')) expect(v).toBe('no');
    for (const v of valueOf(directives, 'SystemCallFilter')) expect(v.startsWith('~')).toBe(true);
  });
});

describe('sysconfig.example', () => {
  it('holds only comments and KEY=VALUE lines', () => {
    readFileSync(SYSCONFIG, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (line.trim() === '' || line.startsWith('#')) return;
        expect(line, `line ${i + 1}`).toMatch(/^[A-Z_][A-Z0-9_]*=/);
      });
  });
});
