/**
 * Issue 8 item 5: another process (a shell loop of ovs-vsctl, like a controller agent) rewrites its own
 * keys on the very rows the daemon owns keys on, and now and then clobbers an owned key, while XAPI
 * overrides change under the daemon. Afterwards every key of the other writer holds the value it wrote
 * last (nothing lost to the daemon's writes: owned keys are mutated, never whole maps) and the owned
 * keys converge to what the rules say.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';
import { expectForeignKeys, plugTap, plugVif, setOverride, snapshotView, tapName, vifName, waitConverged, waitReady } from './support.js';

describe('a concurrent writer on the same rows', () => {
  let env: HostEnv;
  let daemon: Daemon;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 4, vifsPerVm: 2 });
    await env.addBridges();
    for (const [i, v] of env.vifs.entries()) {
      await plugVif(env.db, v, 'hotplug');
      if (i % 2 === 0) await plugTap(env.db, v, 'hotplug');
    }
    daemon = env.startDaemon({ logLevel: 'info', env: { OVS_XAPI_SYNC_RETRY_MAX_DELAY_MS: '500' } });
    await waitReady(daemon, 15_000);
  });

  afterAll(async () => {
    await env.close();
  });

  it('loses none of the other writer\'s keys and converges on the owned ones', async () => {
    const names = env.vifs.flatMap((v, i) => (i % 2 === 0 ? [vifName(v), tapName(v)] : [vifName(v)]));
    const bridges = [...new Set(env.vifs.map((v) => v.bridge))];
    const stopFile = join(env.rundir, 'writer.stop');
    const sets = [
      ...names.map((n) => `-- set Interface ${n} external_ids:writer=$i external_ids:writer-${n}=$i`),
      ...bridges.map((b) => `-- set Bridge ${b} external_ids:writer=$i other_config:writer=$i`),
      '-- set Open_vSwitch . external_ids:writer=$i other_config:writer=$i',
    ].join(' ');
    // Every 4th round also clobbers owned keys, which the daemon must put back.
    const clobber = `-- set Interface ${names[0]!} external_ids:iface-id=clobbered external_ids:iface-status=bogus -- set Bridge ${bridges[0]!} external_ids:bridge-id=clobbered`;
    const script = `i=0; while [ ! -e "$STOP" ]; do i=$((i+1)); if [ $((i % 4)) -eq 0 ]; then extra='${clobber}'; else extra=''; fi; ovs-vsctl --no-wait --db="$DB" ${sets} $extra || exit 1; echo $i; done`;
    const writer = spawn('sh', ['-c', script], { env: { ...process.env, DB: env.db.remote, STOP: stopFile }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    writer.stdout.on('data', (c: Buffer) => (out += c.toString()));
    writer.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const writerExit = new Promise<number | null>((r) => writer.once('exit', (code) => { r(code); }));

    // Meanwhile the daemon has work: overrides flip on the same rows' VIFs, VMs and networks.
    const deadline = Date.now() + 5000;
    let flips = 0;
    while (Date.now() < deadline) {
      const v = env.vifs[flips % env.vifs.length]!;
      setOverride(env.sim, 'VIF', v.vifUuid, 'nicira-iface-id', flips % 3 === 0 ? undefined : `iface-${flips}`);
      setOverride(env.sim, 'VM', v.vmUuid, 'nicira-vm-id', `vm-${flips}`);
      const net = env.sim.state.all('network')[flips % 2]!;
      setOverride(env.sim, 'network', net.uuid, 'nicira-bridge-id', `br-${flips}`);
      flips++;
      // Paces the XAPI changes while the writer runs: a load pattern, not a wait for something.
      await new Promise((r) => setTimeout(r, 50));
    }
    writeFileSync(stopFile, '');
    expect(await writerExit).toBe(0);
    expect(existsSync(stopFile)).toBe(true);
    const rounds = out.trim().split('\n').filter((l) => l !== '');
    const last = rounds.at(-1)!;
    expect(Number(last), err).toBeGreaterThan(8);
    console.log(`concurrent writer: ${rounds.length} rounds, ${flips} override flips`);

    await waitConverged(env, 20_000);
    const view = await snapshotView(env.db);
    const lost: string[] = [];
    for (const n of names) {
      const row = view.interfaces.get(view.interfaceByName.get(n)!)!;
      if (row.externalIds.get('writer') !== last) lost.push(`${n} writer=${String(row.externalIds.get('writer'))}`);
      if (row.externalIds.get(`writer-${n}`) !== last) lost.push(`${n} writer-${n}`);
    }
    for (const b of view.bridges.values()) {
      if (!bridges.includes(b.name)) continue;
      if (b.externalIds.get('writer') !== last || b.otherConfig.get('writer') !== last) lost.push(`bridge ${b.name}`);
    }
    if (view.root?.externalIds.get('writer') !== last || view.root.otherConfig.get('writer') !== last) lost.push('root');
    expect(lost).toEqual([]);
    await expectForeignKeys(env, new Map(names.map((n) => [n, 'hotplug'])));
    await waitReady(daemon, 10_000);
    expect(await env.getKey('Interface', names[0]!, 'external_ids', 'iface-status')).not.toBe('bogus');
    await waitFor(async () => (await env.getKey('Bridge', bridges[0]!, 'external_ids', 'bridge-id')) !== 'clobbered', 5000, 'bridge-id restored');
  }, 60_000);
});
