/**
 * Secrets stay out of the daemon's output (issue 6 §3): with the XAPI password in a 0600 file and the
 * simulator requiring it, nothing the daemon prints at `--log-level trace` (stdout and stderr, start-up
 * config dump, re-login after SESSION_INVALID, `ovs-appctl status`) contains the password or any
 * session ref the simulator handed out.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';
import { FAST_ENV, scrape, value, waitReadyz } from './helpers.js';

const USER = 'ops-user';
const PASSWORD = 'Pa55-w0rd-8c1f2d7e-never-print-me';

describe('the XAPI password and session refs never reach the output', () => {
  let env: HostEnv;
  let dir: string;
  let daemon: Daemon;
  let base: string;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 1, vifsPerVm: 1, credentials: { user: USER, password: PASSWORD } });
    dir = mkdtempSync(join(tmpdir(), 'oxs-ops-secret-'));
    const file = join(dir, 'xapi.password');
    writeFileSync(file, `${PASSWORD}\n`);
    chmodSync(file, 0o600);
    daemon = env.startDaemon({ logLevel: 'trace', args: ['--xapi-user', USER, '--xapi-password-file', file], env: FAST_ENV });
    base = await daemon.healthUrl();
  });

  afterAll(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs in with the password from the file (ready means the simulator accepted it)', async () => {
    await waitReadyz(base, 200, 'ready with credentials');
    expect(env.sim.issuedSessions.length).toBeGreaterThanOrEqual(1);
  });

  it('logs in again after the sessions are invalidated', async () => {
    const issued = env.sim.issuedSessions.length;
    env.sim.invalidateSessions();
    // Touch XAPI so the next call meets SESSION_INVALID (the long-poll is woken by the invalidation).
    env.sim.state.addToOtherConfig('VIF', env.vifs[0]!.vifUuid, 'touch', '1');
    await waitFor(() => env.sim.issuedSessions.length > issued, 10_000, 'a second login');
    await daemon.waitForLog((l) => l.component === 'xapi' && l.relogin === true, 10_000);
    await waitReadyz(base, 200, 'ready after re-login');
    await waitFor(async () => value((await scrape(base)).exposition, 'ovs_xapi_sync_xapi_relogins_total') >= 1, 5000, 'relogin counted');
  });

  it('prints neither the password nor a session ref, even at trace level', async () => {
    const status = await env.appctl(daemon.controlPath, 'status');
    expect(status.code).toBe(0);
    const stop = await daemon.stop('SIGTERM');
    expect(stop.code).toBe(0);
    const output = `${daemon.stdout()}\n${daemon.stderr()}\n${status.stdout}\n${status.stderr}`;
    // The output is rich enough to have leaked something: trace/debug lines and the redacted config.
    expect(daemon.logs.some((l) => l.level <= 20)).toBe(true);
    expect(output).toContain('[Redacted]');
    expect(output).not.toContain(PASSWORD);
    const sessions = env.sim.issuedSessions;
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    for (const ref of sessions) {
      expect(ref).toMatch(/^OpaqueRef:/);
      expect(output, `session ref ${ref} leaked`).not.toContain(ref);
      expect(output).not.toContain(ref.slice('OpaqueRef:'.length));
    }
  });
});
