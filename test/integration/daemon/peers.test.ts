/**
 * The daemon when its peers go away and come back (issue 5): ovsdb-server restarted, XAPI down for a
 * while and back with every session invalidated, XAPI answering garbage. Short retry intervals keep
 * this quick; issue 8's fault suite covers the long versions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';

const FAST = {
  OVS_XAPI_SYNC_RETRY_MAX_DELAY_MS: '400',
  OVS_XAPI_SYNC_OVSDB_PROBE_INTERVAL_MS: '500',
};

describe('peers going away and coming back', () => {
  let env: HostEnv;
  let daemon: Daemon;

  const ifaceId = (name: string): Promise<string | undefined> => env.getKey('Interface', name, 'external_ids', 'iface-id');
  const readyz = async (): Promise<{ status: number; body: { checks?: Record<string, { ok: boolean; detail: string }> } }> => {
    const res = await fetch(`${await daemon.healthUrl()}/readyz`);
    return { status: res.status, body: (await res.json()) as { checks?: Record<string, { ok: boolean; detail: string }> } };
  };

  beforeAll(async () => {
    env = await startHostEnv({ vms: 3, vifsPerVm: 2 });
    await env.addBridges();
    daemon = env.startDaemon({ env: FAST });
    await waitFor(async () => (await readyz()).status === 200, 15_000, 'ready');
  });

  afterAll(async () => {
    await env.close();
  });

  it('reconnects to a restarted ovsdb-server and converges again, keeping foreign keys', async () => {
    const vif = env.vifs[0]!;
    const name = await env.plugVif(vif, { foreign: 'survives' });
    await waitFor(async () => (await ifaceId(name)) === vif.vifUuid, 10_000, 'iface-id before restart');

    env.db.kill('SIGKILL');
    await waitFor(async () => (await readyz()).status === 503, 10_000, 'not ready while ovsdb-server is down');
    expect((await readyz()).body.checks?.ovsdb?.ok).toBe(false);
    await env.db.restart();

    // Drift introduced right after the restart is corrected on the new connection.
    await env.db.vsctl('set', 'Interface', name, 'external_ids:iface-id=stale');
    const second = env.vifs[1]!;
    const name2 = await env.plugVif(second);
    await waitFor(async () => (await ifaceId(name)) === vif.vifUuid && (await ifaceId(name2)) === second.vifUuid, 15_000, 'converged after restart');
    expect(await env.getKey('Interface', name, 'external_ids', 'foreign')).toBe('survives');
    await waitFor(async () => (await readyz()).status === 200, 10_000, 'ready again');
    expect(daemon.child.exitCode).toBeNull();
  });

  it('gives defaults while XAPI is away and corrects them when it comes back with sessions invalidated', async () => {
    const vif = env.vifs[2]!;
    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'from-xapi');
    await env.sim.faults.set({ down: true });
    await waitFor(async () => (await readyz()).body.checks?.xapi?.ok === false, 10_000, 'xapi not ready');

    const name = await env.plugVif(vif);
    // XAPI unknown: a row with no value yet gets the default so controllers are not blocked (docs/design.md §3).
    await waitFor(async () => (await ifaceId(name)) === vif.vifUuid, 10_000, 'default iface-id while XAPI is down');
    expect((await readyz()).status).toBe(503);

    env.sim.faults.invalidateSessions();
    await env.sim.faults.set({ down: false });
    await waitFor(async () => (await ifaceId(name)) === 'from-xapi', 15_000, 'override after XAPI returned');
    await waitFor(async () => (await readyz()).status === 200, 10_000, 'ready after XAPI returned');
    expect(daemon.child.exitCode).toBeNull();
  });

  it('survives malformed XAPI replies and still follows changes', async () => {
    const vif = env.vifs[3]!;
    const name = await env.plugVif(vif);
    await waitFor(async () => (await ifaceId(name)) === vif.vifUuid, 10_000, 'default iface-id');
    await env.sim.faults.set({ malformedEvery: 2 });
    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'despite-garbage');
    await waitFor(async () => (await ifaceId(name)) === 'despite-garbage', 15_000, 'override through malformed replies');
    await env.sim.faults.set({ malformedEvery: 0 });
    expect(daemon.child.exitCode).toBeNull();
    expect(daemon.stderr()).toBe('');
    await waitFor(async () => (await readyz()).status === 200, 10_000, 'ready');
  });
});
