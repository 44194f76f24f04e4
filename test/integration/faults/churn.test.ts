/**
 * Issue 8 items 1 and 2 at default-suite scale (the 2000-cycle version is `npm run soak`): plug/unplug
 * churn of vif/tap pairs across bridges while XAPI overrides change, then ovsdb-server killed with
 * SIGKILL at random moments of the churn. Afterwards the database equals what the rules say (the pure
 * reconciler over a fresh snapshot and the simulator's state finds nothing to write) and every foreign
 * key planted by the "hotplug scripts" and "controller" is still there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, type Daemon, type HostEnv } from '../../helpers/host-env.js';
import { churn, churnWithKills, expectForeignKeys, waitOvsdbReconnects, expectRootAndBridgeKeys, plantRootAndBridgeKeys, rssBytes, waitConverged, waitReady } from './support.js';
import { metricValue } from '../operations/helpers.js';

const RECONNECTS = 'ovs_xapi_sync_ovsdb_reconnects_total';
const FAST = { OVS_XAPI_SYNC_RETRY_MAX_DELAY_MS: '500', OVS_XAPI_SYNC_OVSDB_PROBE_INTERVAL_MS: '1000' };

describe('churn', () => {
  let env: HostEnv;
  let daemon: Daemon;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 12, vifsPerVm: 3 });
    await env.addBridges();
    await plantRootAndBridgeKeys(env, 'kept');
    daemon = env.startDaemon({ logLevel: 'info', env: FAST });
    await waitReady(daemon, 15_000);
  });

  afterAll(async () => {
    await env.close();
  });

  it('converges after 300 plug/unplug cycles with overrides changing, keeping every foreign key', async () => {
    const rssStart = rssBytes(daemon.pid);
    const result = await churn(env, { cycles: 300, lanes: 4, seed: 8001 });
    expect(result.cycles).toBeGreaterThanOrEqual(300);
    expect(result.overrideChanges).toBeGreaterThan(50);
    await waitConverged(env, 20_000);
    await expectForeignKeys(env, result.plugged);
    await expectRootAndBridgeKeys(env, 'kept');
    await waitReady(daemon, 10_000);
    const growth = rssBytes(daemon.pid) - rssStart;
    console.log(`churn 300 cycles: daemon RSS ${(rssStart / 2 ** 20).toFixed(1)} MiB → growth ${(growth / 2 ** 20).toFixed(1)} MiB`);
    expect(growth).toBeLessThan(64 * 2 ** 20);
  }, 120_000);

  it('converges after ovsdb-server is SIGKILLed 5 times at random moments of the churn, losing no foreign key', async () => {
    const before = await metricValue(await daemon.healthUrl(), RECONNECTS);
    const afterKill = async (kills: number): Promise<void> => {
      await waitOvsdbReconnects(daemon, before + kills, 15_000);
    };
    const result = await churnWithKills(env, { cycles: 200, lanes: 4, seed: 8003, kills: 5, killSeed: 8002, afterKill });
    expect(result.kills).toBe(5);
    expect(daemon.child.exitCode).toBeNull();
    await waitConverged(env, 30_000);
    await expectForeignKeys(env, result.plugged);
    await expectRootAndBridgeKeys(env, 'kept');
    const body = await waitReady(daemon, 20_000);
    expect(body.checks.ovsdb?.ok).toBe(true);
    expect(await metricValue(await daemon.healthUrl(), RECONNECTS)).toBeGreaterThanOrEqual(before + 5);
  }, 180_000);
});
