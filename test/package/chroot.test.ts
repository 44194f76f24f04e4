/**
 * The packaged daemon in a chroot of the unpacked RPM ALONE (issue 15): the package's files, a bind of
 * /dev/null, /proc, and socket directories — no host library, loader or shell can be used. It answers
 * --version, converges the ports with --once against a real ovsdb-server whose socket is bound into the
 * chroot and the XAPI simulator on loopback, and as a daemon takes its pidfile lock (fs-ext), tells
 * systemd it is ready (unix-dgram) and answers the unmodified ovs-appctl by name.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, waitFor, type HostEnv } from '../helpers/host-env.js';
import { BUILD_TIMEOUT_MS, ensurePackage, SLOW_MS, unpackRpm, type Artifacts } from './artifacts.js';

/**
 * Runs as root in a private mount namespace (the mounts vanish with the process): binds /dev/null and
 * the ovsdb-server's directory into $1, mounts /proc, then replaces itself by `chroot $1 CMD…`.
 */
const ENTER = `set -e
root=$1; dbdir=$2; shift 2
mount --bind /dev/null "$root/dev/null"
mount -t proc proc "$root/proc"
mount --bind "$dbdir" "$root/run/ovsdb"
exec chroot "$root" "$@"`;

/** The whole environment the daemon gets: nothing of the test runner's leaks in. */
const CHROOT_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', OVS_RUNDIR: '/run/ovs-xapi-sync', MALLOC_ARENA_MAX: '2' };

interface DgramServer {
  on(event: 'error', fn: (err: Error) => void): void;
  bind(path: string): void;
  close(): void;
}
const unixDgram = createRequire(import.meta.url)('unix-dgram') as {
  createSocket(type: 'unix_dgram', onMessage: (buf: Buffer) => void): DgramServer;
};

let artifacts: Artifacts;
let root: string;
let env: HostEnv;
let remote: string;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the package tests chroot and mount: run them as root');
  artifacts = await ensurePackage();
  root = unpackRpm(artifacts.rpm);
  for (const dir of ['dev', 'proc', 'run/ovsdb', 'run/ovs-xapi-sync']) mkdirSync(join(root, dir), { recursive: true });
  writeFileSync(join(root, 'dev/null'), '');
  env = await startHostEnv({ vms: 1, vifsPerVm: 2 });
  await env.addBridges();
  for (const vif of env.vifs) await env.plugVif(vif);
  // --root-prefix: the XAPI inventory and init cookie the daemon reads.
  cpSync(env.root, join(root, 'host'), { recursive: true });
  remote = `unix:/run/ovsdb/${basename(env.db.socketPath)}`;
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  await (env as HostEnv | undefined)?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

function enter(args: readonly string[], extraEnv: Record<string, string> = {}): ChildProcess {
  return spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', ENTER, 'sh', root, env.db.dir, ...args], {
    env: { ...CHROOT_ENV, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function runInChroot(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = enter(args);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

const daemonArgs = (): string[] => [remote, '--xapi', env.xapiUrl, '--root-prefix', '/host', '--health', 'off', '--log-level', 'info'];

describe('the packaged daemon in a chroot of the package alone', { timeout: SLOW_MS }, () => {
  it('prints its version', async () => {
    const r = await runInChroot(['/usr/sbin/ovs-xapi-sync', '--version']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`ovs-xapi-sync (Open vSwitch compatible) ${artifacts.version}`);
  });

  it('runs from the bundle alone (dist/ holds only bin/), `logs` included', async () => {
    expect(readdirSync(join(root, 'opt/ovs-xapi-sync/dist'))).toEqual(['bin']);
    const r = await runInChroot(['/usr/sbin/ovs-xapi-sync', 'logs', '--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: ovs-xapi-sync logs');
  });

  it('--once --pidfile gives the ports their ids', async () => {
    for (const vif of env.vifs) expect(await env.getKey('Interface', `vif${vif.domid}.${vif.device}`, 'external_ids', 'iface-id')).toBeUndefined();
    const r = await runInChroot(['/usr/sbin/ovs-xapi-sync', ...daemonArgs(), '--once', '--pidfile', '--unixctl', '/run/ovs-xapi-sync/once.ctl']);
    expect(r.stderr).toBe('');
    expect(r.code, r.stdout).toBe(0);
    for (const vif of env.vifs) {
      const ids = await env.getMap('Interface', `vif${vif.domid}.${vif.device}`, 'external_ids');
      expect(ids['iface-id']).toBe(vif.vifUuid);
      expect(ids['vm-id']).toBe(vif.vmUuid);
    }
  });

  it('runs as a daemon: pidfile lock for ovs-appctl, READY=1 to systemd, exit 0 on SIGTERM', async () => {
    const messages: string[] = [];
    const receiver = unixDgram.createSocket('unix_dgram', (buf) => messages.push(buf.toString('utf8')));
    receiver.bind(join(root, 'run/notify.sock'));
    const daemon = enter(['/usr/sbin/ovs-xapi-sync', ...daemonArgs(), '--pidfile'], { NOTIFY_SOCKET: '/run/notify.sock' });
    let output = '';
    daemon.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    daemon.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => daemon.on('close', resolve));
    try {
      await waitFor(() => messages.some((m) => m.split('\n').includes('READY=1')), 30_000, 'READY=1').catch((err: unknown) => {
        throw new Error(`${String(err)}; the daemon said:\n${output}`);
      });
      expect(output).not.toMatch(/PIDFILE|no pidfile/);
      const appctl = spawnSync('ovs-appctl', ['-t', 'ovs-xapi-sync', 'version'], {
        env: { ...process.env, OVS_RUNDIR: join(root, 'run/ovs-xapi-sync') },
        encoding: 'utf8',
      });
      expect(appctl.stderr).toBe('');
      expect(appctl.stdout).toContain(artifacts.version);
      daemon.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      daemon.kill('SIGKILL');
      receiver.close();
    }
  });
});
