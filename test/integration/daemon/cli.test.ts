/**
 * The command-line contracts of docs/design.md §6 that scripts depend on: exit codes of a bad option, of
 * `--once` and `--once --dry-run`, and `ovs-appctl` in both target forms with the unmodified ovs-appctl.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startHostEnv, waitFor, type HostEnv } from '../../helpers/host-env.js';

const execFileAsync = promisify(execFile);

interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function runCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('command line', () => {
  it.each([
    [['--no-such-option'], /--no-such-option/],
    [['--xapi-protocol', 'soap'], /--xapi-protocol/],
    [['--log-level', 'loud'], /--log-level/],
    [['ssl:127.0.0.1:6640'], /ssl/],
    [['--health', 'nowhere'], /--health/],
  ])('exits 2 with one line naming the problem for %j', async (args, pattern) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
    expect(r.stdout).toBe('');
  });

  it('prints help and the version with exit 0', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const option of ['--xapi', '--xapi-protocol', '--root-prefix', '--config', '--health', '--unixctl', '--pidfile', '--once', '--dry-run']) {
      expect(help.stdout).toContain(option);
    }
    const version = await runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/\d+\.\d+\.\d+/);
  });
});

describe('--once and --dry-run', () => {
  let env: HostEnv;
  let common: string[];

  beforeAll(async () => {
    env = await startHostEnv({ vms: 2, vifsPerVm: 2 });
    await env.addBridges();
    for (const vif of env.vifs) await env.plugVif(vif, { foreign: 'kept' });
    common = [env.db.remote, '--xapi', env.xapiUrl, '--root-prefix', env.root, '--health', 'off', '--log-level', 'info', '--unixctl', join(env.rundir, 'once.ctl')];
  });

  afterAll(async () => {
    await env.close();
  });

  it('--once --dry-run reports drift with exit 1 and writes nothing', async () => {
    const r = await runCli([...common, '--once', '--dry-run']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/drift/);
    const name = `vif${env.vifs[0]!.domid}.${env.vifs[0]!.device}`;
    expect(await env.getKey('Interface', name, 'external_ids', 'iface-id')).toBeUndefined();
  });

  it('--once converges the database and exits 0; the drift check then exits 0', async () => {
    const r = await runCli([...common, '--once']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const vif of env.vifs) {
      const m = await env.getMap('Interface', `vif${vif.domid}.${vif.device}`, 'external_ids');
      expect(m['iface-id']).toBe(vif.vifUuid);
      expect(m['vm-id']).toBe(vif.vmUuid);
      expect(m.foreign).toBe('kept');
    }
    expect(await env.getKey('Open_vSwitch', '.', 'external_ids', 'system-id')).toBe(env.sim.thisHost.uuid);
    const check = await runCli([...common, '--once', '--dry-run']);
    expect(check.code).toBe(0);
  });

  it('--once --dry-run notices drift an operator introduced', async () => {
    const vif = env.vifs[1]!;
    await env.db.vsctl('set', 'Interface', `vif${vif.domid}.${vif.device}`, 'external_ids:iface-id=wrong');
    const r = await runCli([...common, '--once', '--dry-run']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('iface-id');
    expect(await env.getKey('Interface', `vif${vif.domid}.${vif.device}`, 'external_ids', 'iface-id')).toBe('wrong');
  });
});

describe('ovs-appctl', () => {
  let env: HostEnv;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 1, vifsPerVm: 1 });
  });

  afterAll(async () => {
    await env.close();
  });

  it('answers the unmodified ovs-appctl by socket path and by name, and exits on `exit`', async () => {
    const daemon = env.startDaemon();
    await waitFor(() => existsSync(daemon.controlPath), 10_000, 'control socket');
    await waitFor(() => existsSync(join(env.rundir, 'ovs-xapi-sync.pid')), 10_000, 'pidfile');

    const byPath = await env.appctl(daemon.controlPath, 'version');
    expect(byPath.code).toBe(0);
    expect(byPath.stdout).toMatch(/^ovs-xapi-sync .*\d+\.\d+\.\d+\n$/);

    const byName = await env.appctl('ovs-xapi-sync', 'list-commands');
    expect(byName.code).toBe(0);
    for (const command of ['exit', 'flush-cache', 'status', 'version', 'vlog/list', 'vlog/reopen', 'vlog/set']) {
      expect(byName.stdout).toContain(command);
    }

    const status = await waitFor(async () => {
      const r = await env.appctl('ovs-xapi-sync', 'status');
      return /reconcile: converged/.test(r.stdout) ? r : undefined;
    }, 10_000, 'status converged');
    expect(status.stdout).toMatch(/ovsdb: monitoring/);
    expect(status.stdout).toMatch(/xapi: live/);

    expect((await env.appctl('ovs-xapi-sync', 'flush-cache')).code).toBe(0);
    const setLevel = await env.appctl('ovs-xapi-sync', 'vlog/set', 'warn');
    expect(setLevel.code).toBe(0);
    expect((await env.appctl('ovs-xapi-sync', 'vlog/list')).stdout).toMatch(/warn/i);

    const unknown = await env.appctl('ovs-xapi-sync', 'no-such-command');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/not a valid command/);

    const exit = await env.appctl('ovs-xapi-sync', 'exit');
    expect(exit.code).toBe(0);
    const status2 = await daemon.exited;
    expect(status2.code).toBe(0);
    expect(existsSync(join(env.rundir, 'ovs-xapi-sync.pid'))).toBe(false);
  });

  it('refuses to start a second instance on the same pidfile', async () => {
    const first = env.startDaemon();
    await waitFor(() => existsSync(join(env.rundir, 'ovs-xapi-sync.pid')), 10_000, 'pidfile');
    const second = env.startDaemon({ health: false });
    const status = await second.exited;
    expect(status.code).toBe(1);
    expect(second.stdout()).toMatch(/pidfile/);
    expect((await env.appctl('ovs-xapi-sync', 'version')).code).toBe(0);
    const stopped = await first.stop();
    expect(stopped.code, first.stdout().slice(-3000) + first.stderr()).toBe(0);
  });
});
