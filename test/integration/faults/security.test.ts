/**
 * Issue 8 item 8: the health endpoint binds loopback by default; the control socket is closed to other
 * users; an https:// XAPI with a self-signed certificate is refused without the CA option and accepted
 * with it; values that end up in OVSDB (XAPI other_config overrides, the configured system id) are
 * validated so a hostile value can break neither a transaction nor the logs.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.js';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import { CLI, startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';
import { plugVif, readyz, setOverride, vifName, waitConverged, waitReady } from './support.js';

const execFileAsync = promisify(execFile);

describe('security', () => {
  let env: HostEnv;
  let tmp: string;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 3, vifsPerVm: 2 });
    await env.addBridges();
    tmp = mkdtempSync(join(tmpdir(), 'oxs-sec-'));
  });

  afterAll(async () => {
    await env.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('binds the health endpoint to loopback by default', async () => {
    const { config } = loadConfig({ argv: [], env: {}, pid: 1 }) as { config: { health: { host: string } } };
    expect(config.health.host).toBe('127.0.0.1');
    // The real daemon with no --health at all: it listens on 127.0.0.1 only.
    const child = spawn(process.execPath, [CLI, env.db.remote, '--xapi', env.xapiUrl, '--root-prefix', env.root, '--unixctl', join(tmp, 'h.ctl'), '--log-level', 'info'], {
      env: { ...process.env, OVS_RUNDIR: env.rundir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => { r(code); }));
    try {
      const line = await waitFor(() => out.split('\n').map((l) => (l.startsWith('{') ? (JSON.parse(l) as Record<string, unknown>) : {})).find((l) => l.component === 'health' && typeof l.port === 'number'), 10_000, 'health listening');
      expect(line.host ?? line.address).toBe('127.0.0.1');
      const port = line.port as number;
      expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
      const external = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv4' && !a.internal);
      if (external !== undefined) await expect(fetch(`http://${external.address}:${port}/livez`)).rejects.toThrow();
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 30_000);

  it('keeps the control socket closed to other users', async () => {
    // Open the directories so that only the socket's own mode stands between another user and it.
    chmodSync(dirname(env.rundir), 0o755);
    chmodSync(env.rundir, 0o755);
    const daemon = env.startDaemon({ logLevel: 'info', health: false });
    try {
      await waitFor(() => {
        try {
          return statSync(daemon.controlPath).isSocket();
        } catch {
          return false;
        }
      }, 10_000, 'control socket');
      expect(statSync(daemon.controlPath).mode & 0o077).toBe(0);
      expect((await env.appctl(daemon.controlPath, 'version')).code).toBe(0);
      const probe = `require('net').connect(${JSON.stringify(daemon.controlPath)}).on('connect',()=>{console.log('CONNECTED');process.exit(0)}).on('error',(e)=>{console.log(e.code);process.exit(0)})`;
      const { stdout } = await execFileAsync(process.execPath, ['-e', probe], { uid: 65534, gid: 65534 });
      expect(stdout.trim()).toBe('EACCES');
    } finally {
      expect((await daemon.stop()).code).toBe(0);
    }
  }, 30_000);

  describe('https:// XAPI with a self-signed certificate', () => {
    let sim: Simulator;
    let cert: string;

    beforeAll(async () => {
      const key = join(tmp, 'key.pem');
      cert = join(tmp, 'cert.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      sim = await startSimulator({ generate: { vms: 1, vifsPerVm: 1 }, listen: { host: '127.0.0.1', port: 0 }, tls: { key: readFileSync(key), cert: readFileSync(cert) } });
      expect(sim.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    });

    afterAll(async () => {
      await sim.close();
    });

    const run = async (extraEnv: Record<string, string>): Promise<{ daemon: Daemon; url: string }> => {
      const daemon = env.startDaemon({ logLevel: 'info', args: ['--xapi', sim.url!], env: { OVS_XAPI_SYNC_RETRY_MAX_DELAY_MS: '500', ...extraEnv } });
      const started = await daemon.waitForLog((l) => l.msg === 'starting');
      expect(JSON.stringify(started)).toContain(sim.url!);
      return { daemon, url: await daemon.healthUrl() };
    };

    it('is refused without the CA option, and readiness says XAPI is down', async () => {
      const { daemon, url } = await run({});
      try {
        await daemon.waitForLog((l) => /self[- ]signed|certificate/i.test(JSON.stringify(l)), 10_000);
        const r = await waitFor(async () => {
          const x = await readyz(url);
          return x.status === 503 && x.body.checks.xapi?.ok === false && /down/.test(x.body.checks.xapi.detail) ? x : undefined;
        }, 10_000, 'readyz says XAPI down');
        expect(r.body.checks.xapi?.detail).toContain(sim.url!);
        expect(sim.sessionCount).toBe(0);
      } finally {
        expect((await daemon.stop()).code).toBe(0);
      }
    }, 30_000);

    it('is accepted with the CA option', async () => {
      const { daemon, url } = await run({ OVS_XAPI_SYNC_XAPI_CA_FILE: cert });
      try {
        await waitFor(async () => (await readyz(url)).body.checks.xapi?.ok === true, 15_000, 'XAPI ok over TLS');
        expect(sim.sessionCount).toBeGreaterThan(0);
      } finally {
        expect((await daemon.stop()).code).toBe(0);
      }
    }, 30_000);
  });

  it('refuses a configured system id that is not a safe id, with one line naming the option', async () => {
    for (const bad of ['a\u202eb', 'x'.repeat(300), 'a\u0007b']) {
      const r = await execFileAsync(process.execPath, [CLI, '--once', '--root-prefix', env.root], { env: { ...process.env, OVS_XAPI_SYNC_SYSTEM_ID: bad } }).then(
        () => ({ code: 0, stderr: '' }),
        (e: unknown) => ({ code: (e as { code: number }).code, stderr: (e as { stderr: string }).stderr }),
      );
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/OVS_XAPI_SYNC_SYSTEM_ID: .*not a safe id/);
      expect(r.stderr).not.toContain('\u202e');
      expect(r.stderr).not.toContain('\u0007');
    }
  }, 30_000);

  it('keeps transactions and logs intact when XAPI other_config carries hostile ids', async () => {
    const [a, b, c] = env.vifs;
    const hostile = {
      newline: 'evil\n{"level":60,"msg":"forged"}',
      bidi: 'abc\u202edef',
      long: 'x'.repeat(10_000),
      // XML-RPC cannot carry C0 controls (XML 1.0), so the hostile line break here is U+2028.
      separator: 'line\u2028sep',
    };
    setOverride(env.sim, 'VIF', a!.vifUuid, 'nicira-iface-id', hostile.newline);
    setOverride(env.sim, 'VM', a!.vmUuid, 'nicira-vm-id', hostile.bidi);
    setOverride(env.sim, 'VIF', b!.vifUuid, 'nicira-iface-id', hostile.long);
    setOverride(env.sim, 'VM', c!.vmUuid, 'nicira-vm-id', hostile.separator);
    // Printable but full of OVSDB/JSON syntax: a safe id, written verbatim (JSON-encoded on the wire).
    const syntax = '"]],["map",[]]}\\ \' ; --';
    setOverride(env.sim, 'VIF', c!.vifUuid, 'nicira-iface-id', syntax);
    setOverride(env.sim, 'network', env.sim.state.all('network')[0]!.uuid, 'nicira-bridge-id', 'br\r\nid');
    for (const v of [a!, b!, c!]) await plugVif(env.db, v, 'hostile');
    const daemon = env.startDaemon({ logLevel: 'debug' });
    try {
      await waitReady(daemon, 15_000);
      await waitConverged(env, 10_000);
      const ids = async (v: typeof a): Promise<Record<string, string>> => env.getMap('Interface', vifName(v!), 'external_ids');
      expect((await ids(a))['iface-id']).toBe(a!.vifUuid);
      expect((await ids(a))['vm-id']).toBe(a!.vmUuid);
      expect((await ids(b))['iface-id']).toBe(b!.vifUuid);
      expect((await ids(c))['iface-id']).toBe(syntax);
      expect((await ids(c))['vm-id']).toBe(c!.vmUuid);
      expect(await env.getKey('Bridge', env.sim.state.all('network')[0]!.fields.bridge as string, 'external_ids', 'bridge-id')).toBeUndefined();
      // Every log line is one JSON object; no hostile character reached the output raw, nor a forged line.
      const lines = daemon.stdout().split('\n').filter((l) => l !== '');
      for (const l of lines) expect(() => JSON.parse(l) as unknown).not.toThrow();
      expect(daemon.stdout()).not.toContain('\u202e');
      expect(daemon.stdout()).not.toContain('\u2028');
      expect(daemon.stdout()).not.toContain('x'.repeat(1000));
      expect(lines.some((l) => (JSON.parse(l) as { msg?: string }).msg === 'forged')).toBe(false);
      expect(daemon.logs.filter((l) => l.level === 40 && /not a safe id/.test(l.msg ?? '')).length).toBeGreaterThanOrEqual(4);
      expect(daemon.logs.some((l) => l.level >= 50)).toBe(false);
    } finally {
      expect((await daemon.stop()).code).toBe(0);
    }
  }, 60_000);
});
