/**
 * The package under test: dist-pkg/'s RPM and tarball, built by `npm run package`'s script here when
 * they are missing or were built from other inputs (scripts/package/inputs-hash.sh), so a developer's
 * `npm test` and CI test the same, current package. A build that fails fails the tests with its log;
 * nothing is skipped. Test files that run at once in separate workers build it only once (a lock).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from '../../src/sandbox/host.js';

export const PREFIX = '/opt/ovs-xapi-sync';
/** Long enough for a build on a loaded 2-core machine. */
export const BUILD_TIMEOUT_MS = 20 * 60_000;
/** For a test that reads the whole 200 MB tree (hashes, readelf) or starts the bundled node. */
export const SLOW_MS = 120_000;

export interface Artifacts {
  readonly version: string;
  readonly rpm: string;
  readonly tarball: string;
}

function expectedArtifacts(): Artifacts {
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const release = readFileSync(join(REPO_ROOT, 'scripts/package/release'), 'utf8').trim();
  const out = join(REPO_ROOT, 'dist-pkg');
  return {
    version,
    rpm: join(out, `ovs-xapi-sync-${version}-${release}.el7.x86_64.rpm`),
    tarball: join(out, `ovs-xapi-sync-${version}-linux-x64.tar.gz`),
  };
}

function current(artifacts: Artifacts): boolean {
  const stamp = join(REPO_ROOT, 'dist-pkg', 'inputs.sha256');
  if (!existsSync(artifacts.rpm) || !existsSync(artifacts.tarball) || !existsSync(stamp)) return false;
  const inputs = execFileSync('bash', [join(REPO_ROOT, 'scripts/package/inputs-hash.sh')], { encoding: 'utf8' });
  return readFileSync(stamp, 'utf8') === inputs;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Takes a lock directory (its owner's pid inside); a lock whose owner died is taken over. */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const key = createHash('sha256').update(REPO_ROOT).digest('hex').slice(0, 12);
  const lock = join(tmpdir(), `oxs-package-${key}.lock`);
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      const owner = Number(existsSync(join(lock, 'pid')) ? readFileSync(join(lock, 'pid'), 'utf8') : NaN);
      if (Number.isInteger(owner) && !alive(owner)) rmSync(lock, { recursive: true, force: true });
      else await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** The current package's artifacts, building them first when needed. */
export async function ensurePackage(): Promise<Artifacts> {
  const artifacts = expectedArtifacts();
  if (current(artifacts)) return artifacts;
  return withLock(async () => {
    if (current(artifacts)) return artifacts;
    // dist/ is current (`npm test` compiles it first) and other test files run the daemon from it.
    const child = spawn('bash', [join(REPO_ROOT, 'scripts/package/build.sh')], {
      cwd: REPO_ROOT,
      env: { ...process.env, OXS_PACKAGE_DIST_BUILT: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const status = await new Promise<number | string>((resolve) => {
      child.on('error', (err) => {
        resolve(err.message);
      });
      child.on('close', (code, signal) => {
        resolve(code ?? signal ?? 'unknown');
      });
    });
    if (status !== 0 || !current(artifacts)) {
      const log = output.trim().split('\n').slice(-40).join('\n');
      throw new Error(`npm run package failed (exit ${String(status)}); the package tests need it:\n${log}`);
    }
    return artifacts;
  });
}

/** Unpacks the RPM's payload (`rpm2cpio | cpio -idm`, as root keeps the owners) into a new directory. */
export function unpackRpm(rpm: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'oxs-rpmroot-'));
  const r = spawnSync('sh', ['-c', 'rpm2cpio "$1" | (cd "$2" && cpio -idm --quiet)', 'sh', rpm, dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`rpm2cpio | cpio failed (install rpm2cpio: apt-get install rpm cpio): ${r.stderr}`);
  }
  return dir;
}

/** Runs a command; throws with its output unless it exits 0. */
export function run(file: string, args: readonly string[], options: { readonly env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(file, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (r.error) throw new Error(`${file}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${String(r.status ?? r.signal)}: ${r.stderr}`);
  return r.stdout;
}
