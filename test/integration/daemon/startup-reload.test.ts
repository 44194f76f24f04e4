/**
 * Start-up and reload contracts (docs/design.md §9): the daemon starts while both peers are down and converges
 * once they come up; it waits for the XAPI init cookie without holding OVSDB back; SIGHUP re-reads the
 * config file and applies what can change at runtime.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INSTALLATION_UUID, startHostEnv, waitFor, type HostEnv } from '../../helpers/host-env.js';

const FAST = { OVS_XAPI_SYNC_RETRY_MAX_DELAY_MS: '300' };

describe('start-up and reload', () => {
  let env: HostEnv | undefined;

  afterEach(async () => {
    await env?.close();
    env = undefined;
  });

  it('starts with ovsdb-server and XAPI down, and converges when they come up', async () => {
    env = await startHostEnv({ vms: 1, vifsPerVm: 1 });
    const host = env;
    const vif = host.vifs[0]!;
    const name = await host.plugVif(vif);
    host.db.kill('SIGKILL');
    await host.sim.faults.set({ down: true });
    const daemon = host.startDaemon({ env: FAST });
    await daemon.waitForLog((l) => l.component === 'health' && typeof l.port === 'number');
    const ready = async (): Promise<number> => (await fetch(`${await daemon.healthUrl()}/readyz`)).status;
    expect(await ready()).toBe(503);
    expect((await fetch(`${await daemon.healthUrl()}/livez`)).status).toBe(200);

    await host.db.restart();
    await host.sim.faults.set({ down: false });
    await waitFor(async () => (await host.getKey('Interface', name, 'external_ids', 'iface-id')) === vif.vifUuid, 15_000, 'iface-id');
    await waitFor(async () => (await ready()) === 200, 15_000, 'ready');
    expect(daemon.child.exitCode).toBeNull();
  });

  it('monitors OVSDB while waiting for the XAPI init cookie, then follows XAPI', async () => {
    env = await startHostEnv({ vms: 1, vifsPerVm: 1, xapiReady: false });
    const host = env;
    const vif = host.vifs[0]!;
    host.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'after-init');
    const daemon = host.startDaemon({ env: FAST });
    await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('waiting for XAPI'));
    const name = await host.plugVif(vif);
    // XAPI not there yet: the row gets its defaults at once (docs/design.md §3 "unknown"); the inventory names the host.
    await waitFor(async () => (await host.getKey('Interface', name, 'external_ids', 'iface-id')) === vif.vifUuid, 10_000, 'default before init');
    await waitFor(async () => (await host.getKey('Open_vSwitch', '.', 'external_ids', 'system-id')) === INSTALLATION_UUID, 10_000, 'inventory system-id');
    host.writeXapiCookie();
    await waitFor(async () => (await host.getKey('Interface', name, 'external_ids', 'iface-id')) === 'after-init', 15_000, 'override after init');
    await waitFor(async () => (await host.getKey('Open_vSwitch', '.', 'external_ids', 'system-id')) === host.sim.thisHost.uuid, 10_000, 'XAPI system-id');
  });

  it('re-reads the config file on SIGHUP and applies systemId and enableStatistics', async () => {
    env = await startHostEnv({ vms: 1, vifsPerVm: 1 });
    const host = env;
    const configFile = join(host.root, 'config.json');
    writeFileSync(configFile, JSON.stringify({ resyncIntervalSec: 600 }));
    const daemon = host.startDaemon({ args: ['--config', configFile] });
    await waitFor(async () => (await host.getKey('Open_vSwitch', '.', 'external_ids', 'system-id')) === host.sim.thisHost.uuid, 10_000, 'system-id from XAPI');
    expect(await host.getKey('Open_vSwitch', '.', 'other_config', 'enable-statistics')).toBeUndefined();

    writeFileSync(configFile, JSON.stringify({ systemId: 'operator-chosen-id', enableStatistics: true }));
    daemon.child.kill('SIGHUP');
    await daemon.waitForLog((l) => l.msg === 'configuration reloaded (SIGHUP)');
    await waitFor(async () => (await host.getKey('Open_vSwitch', '.', 'external_ids', 'system-id')) === 'operator-chosen-id', 10_000, 'system-id override');
    expect(await host.getKey('Open_vSwitch', '.', 'external_ids', 'xs-system-uuid')).toBe('operator-chosen-id');
    expect(await host.getKey('Open_vSwitch', '.', 'other_config', 'enable-statistics')).toBe('true');

    // A config that no longer validates is refused; the daemon keeps running with the previous one.
    writeFileSync(configFile, '{"systemId": 42}');
    daemon.child.kill('SIGHUP');
    await daemon.waitForLog((l) => l.level === 50 && typeof l.msg === 'string' && l.msg.includes('reload failed'));
    expect(daemon.child.exitCode).toBeNull();
    rmSync(configFile);
    expect((await daemon.stop()).code).toBe(0);
  });
});
