/**
 * `npm run soak`: issue 8 at full length, on one host and one daemon that live through all of it.
 * 1. 2000 plug/unplug cycles of vif/tap pairs across bridges while XAPI overrides change; the database
 *    then equals what the rules say, no foreign key is lost, and RSS growth is bounded (printed).
 * 2. The same churn again with ovsdb-server SIGKILLed and restarted 5 times at random moments.
 * 3. ovsdb-server hung (SIGSTOP) for 30 s, then resumed.
 * 4. XAPI down for 30 s; and an event.from that outlives the client's own timeout.
 * Each step ends converged and ready; the daemon never exits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, waitFor, type Daemon, type HostEnv } from '../helpers/host-env.js';
import {
  churn,
  churnWithKills,
  expectForeignKeys,
  expectRootAndBridgeKeys,
  plantRootAndBridgeKeys,
  plugVif,
  readyz,
  rssBytes,
  setOverride,
  vifName,
  waitConverged,
  waitReady,
} from '../integration/faults/support.js';

const MiB = 2 ** 20;

describe('soak', () => {
  let env: HostEnv;
  let daemon: Daemon;
  let url: string;
  const started = Date.now();
  let plugged = new Map<string, string>();

  beforeAll(async () => {
    env = await startHostEnv({ vms: 40, vifsPerVm: 4 });
    await env.addBridges();
    await plantRootAndBridgeKeys(env, 'soak');
    daemon = env.startDaemon({
      logLevel: 'info',
      env: { OVS_XAPI_SYNC_OVSDB_PROBE_INTERVAL_MS: '2000', OVS_XAPI_SYNC_RETRY_MAX_DELAY_MS: '2000' },
    });
    url = await daemon.healthUrl();
    await waitReady(daemon, 30_000);
  });

  afterAll(async () => {
    env.db.resume();
    console.log(`soak: total ${((Date.now() - started) / 1000).toFixed(0)} s`);
    await env.close();
  });

  const settle = async (what: string): Promise<void> => {
    expect(daemon.child.exitCode, `daemon exited during ${what}`).toBeNull();
    await waitConverged(env, 60_000, `convergence after ${what}`);
    await expectForeignKeys(env, plugged);
    await expectRootAndBridgeKeys(env, 'soak');
    await waitReady(daemon, 60_000);
  };

  it('2000 plug/unplug cycles with overrides changing: converged, nothing lost, RSS bounded', async () => {
    // Warm-up so that the baseline includes JIT, caches and pools at working size.
    await churn(env, { cycles: 200, lanes: 6, seed: 1 });
    await waitConverged(env, 60_000);
    const rss0 = rssBytes(daemon.pid);
    const t0 = Date.now();
    let peak = rss0;
    const result = await churn(env, {
      cycles: 2000,
      lanes: 6,
      seed: 2,
      onProgress: (done) => {
        if (done % 100 === 0) peak = Math.max(peak, rssBytes(daemon.pid));
      },
    });
    plugged = result.plugged;
    const secs = (Date.now() - t0) / 1000;
    await settle('2000 cycles');
    const rss1 = rssBytes(daemon.pid);
    console.log(
      `soak churn: ${result.cycles} cycles, ${result.overrideChanges} override changes in ${secs.toFixed(1)} s; daemon RSS ${(rss0 / MiB).toFixed(1)} → ${(rss1 / MiB).toFixed(1)} MiB (growth ${((rss1 - rss0) / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB)`,
    );
    expect(result.cycles).toBeGreaterThanOrEqual(2000);
    expect(rss1 - rss0).toBeLessThan(48 * MiB);
  }, 400_000);

  it('ovsdb-server SIGKILLed 5 times at random moments of the churn: converges, no foreign key lost', async () => {
    const result = await churnWithKills(env, { cycles: 600, lanes: 6, seed: 4, kills: 5, killSeed: 3 });
    plugged = result.plugged;
    expect(result.kills).toBe(5);
    console.log(`soak kills: 5 SIGKILLs over ${result.cycles} cycles, ${result.retries} hotplug commands retried`);
    await settle('5 SIGKILLs');
  }, 300_000);

  it('ovsdb-server hung for 30 s: noticed by the probe, reconnected, converged', async () => {
    const paused = Date.now();
    env.db.pause();
    try {
      await waitFor(async () => {
        const r = await readyz(url);
        return r.status === 503 && r.body.checks.ovsdb?.ok === false;
      }, 10_000, 'not ready while hung');
      console.log(`soak hang: noticed after ${Date.now() - paused} ms`);
      // The change the hung server cannot see yet: an override, applied after SIGCONT.
      setOverride(env.sim, 'VIF', env.vifs[0]!.vifUuid, 'nicira-iface-id', 'after-hang');
      await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - paused))));
      expect(daemon.child.exitCode).toBeNull();
      expect((await fetch(`${url}/livez`)).status).toBe(200);
    } finally {
      env.db.resume();
    }
    await settle('a 30 s SIGSTOP');
  }, 120_000);

  it('XAPI down for 30 s: fallback ids meanwhile, corrected afterwards, converged', async () => {
    // Unplug one VIF so it can be plugged while XAPI is away.
    const v = env.vifs[1]!;
    await env.unplug(`tap${v.domid}.${v.device}`);
    await env.unplug(vifName(v));
    plugged.delete(`tap${v.domid}.${v.device}`);
    await waitConverged(env, 30_000);
    await env.sim.faults.set({ down: true });
    const downAt = Date.now();
    try {
      await waitFor(async () => {
        const r = await readyz(url);
        return r.status === 503 && r.body.checks.xapi?.ok === false && /down/.test(r.body.checks.xapi.detail);
      }, 15_000, 'readyz says XAPI down');
      setOverride(env.sim, 'VIF', v.vifUuid, 'nicira-iface-id', 'written-while-away');
      await plugVif(env.db, v, 'while-away');
      plugged.set(vifName(v), 'while-away');
      await waitFor(async () => (await env.getKey('Interface', vifName(v), 'external_ids', 'iface-id')) === v.vifUuid, 15_000, 'fallback iface-id');
      await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - downAt))));
      expect(daemon.child.exitCode).toBeNull();
    } finally {
      await env.sim.faults.set({ down: false });
    }
    await waitFor(async () => (await env.getKey('Interface', vifName(v), 'external_ids', 'iface-id')) === 'written-while-away', 30_000, 'override after XAPI is back');
    await settle('XAPI down 30 s');
  }, 120_000);

  it('event.from that never returns: the client times out, says so, and catches up', async () => {
    await env.sim.faults.set({ eventFromHang: true });
    const v = env.vifs[2]!;
    try {
      await new Promise((r) => setTimeout(r, 500));
      setOverride(env.sim, 'VM', v.vmUuid, 'nicira-vm-id', 'during-long-hang');
      // The client gives event.from its 30 s server-side timeout plus 30 s; then XAPI counts as down.
      const r = await waitFor(async () => {
        const x = await readyz(url);
        return x.status === 503 && x.body.checks.xapi?.ok === false ? x : undefined;
      }, 90_000, 'readyz 503 after the event.from timeout');
      console.log(`soak event.from hang: readiness says ${r.body.checks.xapi?.detail}`);
      expect(daemon.child.exitCode).toBeNull();
    } finally {
      await env.sim.faults.set({ eventFromHang: false });
    }
    await waitFor(async () => (await env.getKey('Interface', vifName(v), 'external_ids', 'vm-id')) === 'during-long-hang', 30_000, 'change made during the hang');
    await settle('an event.from hang');
  }, 180_000);
});
