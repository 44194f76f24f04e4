/**
 * The RPM as EL7's rpm 4.11 and yum see it (issue 15): dependencies EL7 can satisfy, a payload it can
 * read, the files and config flags, the tarball holding the same tree, every bundled ELF file served by
 * the bundle alone, and the scriptlets' systemctl calls for install, upgrade and erase.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_TIMEOUT_MS, ensurePackage, PREFIX, run, SLOW_MS, unpackRpm, type Artifacts } from './artifacts.js';

/**
 * The rpmlib() features rpm 4.11 (EL7) provides, with the version each one requires at most
 * (rpm-software-management/rpm lib/rpmds.c `rpmlibProvides`, rpm-4.11.3-release).
 */
const EL7_RPMLIB: Readonly<Record<string, string>> = {
  VersionedDependencies: '3.0.3-1',
  CompressedFileNames: '3.0.4-1',
  PayloadIsBzip2: '3.0.5-1',
  PayloadIsXz: '5.2-1',
  PayloadIsLzma: '4.4.2-1',
  PayloadFilesHavePrefix: '4.0-1',
  ExplicitPackageProvide: '4.0-1',
  HeaderLoadSortsTags: '4.0.1-1',
  ScriptletInterpreterArgs: '4.0.3-1',
  PartialHardlinkSets: '4.0.4-1',
  ConcurrentAccess: '4.1-1',
  BuiltinLuaScripts: '4.2.2-1',
  FileCaps: '4.6.1-1',
  FileDigests: '4.6.0-1',
  ScriptletExpansion: '4.9.0-1',
  TildeInVersions: '4.10.0-1',
};
/** What the package may require besides rpmlib(): both are in every EL7 base install. */
const EL7_REQUIRES = new Set(['/bin/sh', 'systemd']);
/** Everything the package writes (issue 15: nothing else). */
const ALLOWED = [/^\/opt\/ovs-xapi-sync(\/|$)/, /^\/usr\/sbin\/ovs-xapi-sync$/, /^\/usr\/lib\/systemd\/system\/ovs-xapi-sync\.service$/, /^\/etc\/ovs-xapi-sync(\/|$)/, /^\/etc\/sysconfig\/ovs-xapi-sync$/];
const STOCK = 'openvswitch-xapi-sync.service';
const OURS = 'ovs-xapi-sync.service';

let artifacts: Artifacts;
let root: string;

beforeAll(async () => {
  artifacts = await ensurePackage();
  root = unpackRpm(artifacts.rpm);
}, BUILD_TIMEOUT_MS);
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const query = (format: string): string[] => run('rpm', ['-qp', '--qf', format, artifacts.rpm]).split('\n').filter((l) => l !== '');

describe('metadata for EL7', () => {
  it('requires only /bin/sh, systemd and rpmlib features rpm 4.11 has', () => {
    const requires = run('rpm', ['-qp', '--requires', artifacts.rpm]).split('\n').filter((l) => l !== '');
    expect(requires).toContain('systemd');
    for (const line of requires) {
      const rpmlib = /^rpmlib\((\w+)\) <= (\S+)$/.exec(line);
      if (rpmlib) {
        expect(EL7_RPMLIB[rpmlib[1]!], line).toBeDefined();
        expect(rpmlib[2], line).toBe(EL7_RPMLIB[rpmlib[1]!]);
      } else {
        expect(EL7_REQUIRES.has(line), `${line}: EL7 may lack it (no automatic or rich dependencies)`).toBe(true);
      }
    }
  });

  it('has a gzip or xz payload, never zstd', () => {
    expect(['gzip', 'xz']).toContain(query('%{PAYLOADCOMPRESSOR}\n')[0]);
  });

  it('is the x86_64 build of the package version, release .el7', () => {
    expect(query('%{NAME} %{VERSION} %{ARCH}\n')[0]).toBe(`ovs-xapi-sync ${artifacts.version} x86_64`);
    expect(query('%{RELEASE}\n')[0]).toMatch(/^\d+\.el7$/);
  });

  it('writes nothing outside its own paths, and marks the two config files noreplace', () => {
    const files = query('[%{FILEFLAGS:fflags} %{FILENAMES}\n]').map((l) => {
      const [flags, ...name] = l.split(' ');
      return { flags: flags ?? '', name: name.join(' ') };
    });
    expect(files.length).toBeGreaterThan(50);
    for (const f of files) expect(ALLOWED.some((re) => re.test(f.name)), f.name).toBe(true);
    const config = files.filter((f) => f.flags.includes('c')).map((f) => `${f.name} ${f.flags}`);
    expect(config.sort()).toEqual(['/etc/ovs-xapi-sync/config.json cn', '/etc/sysconfig/ovs-xapi-sync cn']);
    for (const path of ['/usr/sbin/ovs-xapi-sync', '/usr/lib/systemd/system/ovs-xapi-sync.service', `${PREFIX}/bin/node`]) {
      expect(files.map((f) => f.name)).toContain(path);
    }
  });
});

/** Relative path → sha256 of each regular file, or the target of each symlink. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isSymbolicLink()) out.set(relative(dir, full), `-> ${run('readlink', [full]).trim()}`);
      else out.set(relative(dir, full), createHash('sha256').update(readFileSync(full)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

describe('the tarball', () => {
  it('holds the same tree as the RPM', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oxs-tarball-'));
    try {
      run('tar', ['-xzf', artifacts.tarball, '-C', dir]);
      const fromTar = tree(dir);
      expect(fromTar.size).toBeGreaterThan(50);
      expect(fromTar).toEqual(tree(root));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, SLOW_MS);
});

function isElf(path: string): boolean {
  const st = statSync(path);
  if (!st.isFile() || st.size < 4) return false;
  return readFileSync(path).subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}

describe('bundled ELF files', () => {
  it('each needs only libraries of the bundle, through the bundled loader', () => {
    const lib = join(root, PREFIX, 'lib');
    const loader = `${PREFIX}/lib/ld-linux-x86-64.so.2`;
    expect(existsSync(join(root, loader))).toBe(true);
    const elves = [...tree(root).keys()].filter((p) => isElf(join(root, p)));
    // node, the two addons, and libc at least: the checks below cannot pass on an empty list.
    for (const name of ['bin/node', 'fs_ext.node', 'unix_dgram.node', 'lib/libc.so.6']) {
      expect(elves.some((p) => p.endsWith(name)), name).toBe(true);
    }
    for (const path of elves) {
      const dynamic = run('readelf', ['-d', join(root, path)]);
      for (const m of dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
        expect(existsSync(join(lib, m[1]!)), `${path} needs ${m[1]!}`).toBe(true);
      }
      // The libraries' own PT_INTERP (libc.so.6 has one, to run as a program) plays no part in loading them.
      if (!path.startsWith(`${PREFIX.slice(1)}/lib/`)) {
        const interp = /Requesting program interpreter: ([^\]]+)\]/.exec(run('readelf', ['-l', join(root, path)]));
        if (interp) expect(interp[1], path).toBe(loader);
        // DT_RPATH, which also serves the libraries' own dependencies (DT_RUNPATH would not).
        expect(dynamic, path).toMatch(new RegExp(`\\(RPATH\\)\\s+Library rpath: \\[${PREFIX}/lib\\]`));
        expect(dynamic, path).not.toMatch(/\(RUNPATH\)/);
      }
    }
    expect(/Requesting program interpreter/.test(run('readelf', ['-l', join(root, PREFIX, 'bin/node')]))).toBe(true);
  }, SLOW_MS);
});

describe('scriptlets', () => {
  let stubs: string;
  let calls: string;
  let scripts: Record<string, string>;

  beforeAll(() => {
    stubs = mkdtempSync(join(tmpdir(), 'oxs-scriptlets-'));
    calls = join(stubs, 'calls');
    // Records each call; fails the calls whose arguments match $STUB_FAIL (a grep -E pattern).
    writeFileSync(
      join(stubs, 'systemctl'),
      `#!/bin/sh\necho "$*" >> "${calls}"\nif [ -n "$STUB_FAIL" ] && echo "$*" | grep -Eq "$STUB_FAIL"; then exit 1; fi\nexit 0\n`,
    );
    chmodSync(join(stubs, 'systemctl'), 0o755);
    scripts = {};
    let current: string | undefined;
    for (const line of run('rpm', ['-qp', '--scripts', artifacts.rpm]).split('\n')) {
      const head = /^(\w+) scriptlet \(using \/bin\/sh\):$/.exec(line);
      if (head) {
        current = head[1]!;
        scripts[current] = '';
      } else if (current !== undefined) {
        scripts[current] = `${scripts[current] ?? ""}${line}\n`;
      }
    }
    mkdirSync(join(stubs, 'scripts'));
  });
  afterAll(() => {
    if (stubs) rmSync(stubs, { recursive: true, force: true });
  });

  /** Runs the scriptlets in order as rpm would (`sh` with $1), returning systemctl's calls. */
  function transaction(steps: readonly [string, number][], fail = ''): string[] {
    rmSync(calls, { force: true });
    for (const [name, arg] of steps) {
      const body = scripts[name];
      expect(body, `no ${name} scriptlet`).toBeDefined();
      const file = join(stubs, 'scripts', name);
      writeFileSync(file, body!);
      // A failing scriptlet would fail the yum transaction: each must exit 0 whatever systemctl does.
      run('sh', [file, String(arg)], { env: { PATH: `${stubs}:/usr/bin:/bin`, STUB_FAIL: fail } });
    }
    return existsSync(calls) ? readFileSync(calls, 'utf8').trimEnd().split('\n') : [];
  }

  it('has exactly %post, %preun and %postun', () => {
    expect(Object.keys(scripts).sort()).toEqual(['postinstall', 'postuninstall', 'preuninstall']);
  });

  it('install: stops and disables the stock unit, enables and starts ours', () => {
    expect(transaction([['postinstall', 1]])).toEqual(['daemon-reload', `stop ${STOCK}`, `disable ${STOCK}`, `enable ${OURS}`, `start ${OURS}`]);
  });

  it('upgrade: restarts ours if it runs and leaves the stock unit alone', () => {
    // rpm -U: the new package's %post (2), then the old package's %preun and %postun (1).
    expect(transaction([['postinstall', 2], ['preuninstall', 1], ['postuninstall', 1]])).toEqual(['daemon-reload', `try-restart ${OURS}`, 'daemon-reload']);
  });

  it('erase: stops and disables ours, gives the stock unit back', () => {
    expect(transaction([['preuninstall', 0], ['postuninstall', 0]])).toEqual([
      `--no-reload disable ${OURS}`,
      `stop ${OURS}`,
      'daemon-reload',
      `enable ${STOCK}`,
      `start ${STOCK}`,
    ]);
  });

  it('erase on a host without the stock unit starts nothing', () => {
    expect(transaction([['preuninstall', 0], ['postuninstall', 0]], `enable ${STOCK}`)).not.toContain(`start ${STOCK}`);
  });

  it('never fails the transaction, whatever systemctl answers', () => {
    const all = transaction([['postinstall', 1], ['postinstall', 2], ['preuninstall', 1], ['postuninstall', 1], ['preuninstall', 0], ['postuninstall', 0]], '.');
    expect(all.length).toBeGreaterThan(8);
  });
});
