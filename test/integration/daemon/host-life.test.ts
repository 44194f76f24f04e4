/**
 * The whole life of a host (issue 5): the daemon as a child process against a real ovsdb-server and
 * the XAPI simulator, checked with ovs-vsctl like an operator would.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTALLATION_UUID, startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';
import { metricValue } from '../operations/helpers.js';

describe('the life of a host', () => {
  let env: HostEnv;
  let daemon: Daemon;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 3, vifsPerVm: 2 });
    const [a, b] = env.vifs;
    // Overrides the old daemon honoured: nicira-bridge-id and fail mode on the first network,
    // disable-in-band on the second, the pool's fail mode as the fallback.
    env.sim.state.setOtherConfig('pool', env.sim.state.all('pool')[0]!.ref, { 'vswitch-controller-fail-mode': 'secure' });
    env.sim.state.addToOtherConfig('network', a!.networkUuid, 'nicira-bridge-id', 'custom-bridge-id');
    env.sim.state.addToOtherConfig('network', a!.networkUuid, 'vswitch-controller-fail-mode', 'standalone');
    env.sim.state.addToOtherConfig('network', b!.networkUuid, 'vswitch-disable-in-band', 'true');
    await env.addBridges();
    daemon = env.startDaemon();
  });

  afterAll(async () => {
    await env.close();
  });

  it('writes system-id, system_type and system_version on the Open_vSwitch row', async () => {
    const host = env.sim.thisHost;
    await waitFor(async () => (await env.getKey('Open_vSwitch', '.', 'external_ids', 'system-id')) === host.uuid, 10_000, 'system-id');
    expect(await env.getKey('Open_vSwitch', '.', 'external_ids', 'xs-system-uuid')).toBe(host.uuid);
    // As on a real host, the inventory names this host's XAPI record (docs/design.md §2.1).
    expect(host.uuid).toBe(INSTALLATION_UUID);
    expect(await env.getColumn('Open_vSwitch', '.', 'system_type')).toBe('XCP-ng');
    expect(await env.getColumn('Open_vSwitch', '.', 'system_version')).toMatch(/^8\.3\.0-/);
  });

  it('gives bridges fail_mode, bridge-id and disable-in-band from their networks or the pool', async () => {
    const [a, b] = env.vifs;
    await waitFor(async () => (await env.getColumn('Bridge', a!.bridge, 'fail_mode')) === 'standalone', 10_000, 'fail_mode of a');
    expect(await env.getKey('Bridge', a!.bridge, 'external_ids', 'bridge-id')).toBe('custom-bridge-id');
    await waitFor(async () => (await env.getColumn('Bridge', b!.bridge, 'fail_mode')) === 'secure', 10_000, 'pool fail_mode on b');
    expect(await env.getKey('Bridge', b!.bridge, 'other_config', 'disable-in-band')).toBe('true');
  });

  it('gives a plugged vif its ids and status, and keeps foreign keys', async () => {
    const vif = env.vifs[0]!;
    const name = await env.plugVif(vif, { 'controller-owned': 'keep-me' });
    await waitFor(async () => (await env.getKey('Interface', name, 'external_ids', 'iface-status')) === 'active', 10_000, 'iface-status');
    const ids = await waitFor(async () => {
      const m = await env.getMap('Interface', name, 'external_ids');
      return m['iface-id'] === vif.vifUuid && m['vm-id'] === vif.vmUuid ? m : undefined;
    });
    expect(ids['controller-owned']).toBe('keep-me');
    expect(ids['xs-vif-uuid']).toBe(vif.vifUuid);
  });

  it('pairs a tap with its vif and unpairs it when the tap goes', async () => {
    const vif = env.vifs[0]!;
    const vifName = `vif${vif.domid}.${vif.device}`;
    const tap = await env.plugTap(vif);
    const tapIds = await waitFor(async () => {
      const m = await env.getMap('Interface', tap, 'external_ids');
      return m['iface-status'] === 'active' && m['iface-id'] === vif.vifUuid ? m : undefined;
    });
    expect(tapIds['vm-id']).toBe(vif.vmUuid);
    expect(tapIds['attached-mac']).toBe(vif.mac);
    expect(tapIds['xs-network-uuid']).toBe(vif.networkUuid);
    await waitFor(async () => (await env.getKey('Interface', vifName, 'external_ids', 'iface-status')) === 'inactive', 10_000, 'vif inactive');
    await env.unplug(tap);
    await waitFor(async () => (await env.getKey('Interface', vifName, 'external_ids', 'iface-status')) === 'active', 10_000, 'vif active again');
  });

  it('carries an override changed in XAPI to the database without flush-cache', async () => {
    const vif = env.vifs[1]!;
    const name = await env.plugVif(vif);
    await waitFor(async () => (await env.getKey('Interface', name, 'external_ids', 'iface-id')) === vif.vifUuid, 10_000, 'default iface-id');
    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'custom-iface');
    env.sim.state.addToOtherConfig('VM', vif.vmUuid, 'nicira-vm-id', 'custom-vm');
    await waitFor(async () => (await env.getKey('Interface', name, 'external_ids', 'iface-id')) === 'custom-iface', 5_000, 'iface-id override');
    await waitFor(async () => (await env.getKey('Interface', name, 'external_ids', 'vm-id')) === 'custom-vm', 5_000, 'vm-id override');
    env.sim.state.removeFromOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id');
    await waitFor(async () => (await env.getKey('Interface', name, 'external_ids', 'iface-id')) === vif.vifUuid, 5_000, 'override removed');
  });

  it('falls back to the uuid for a VIF XAPI does not know', async () => {
    const ghost = { ...env.vifs[0]!, vifUuid: '6a1b2c3d-0000-4000-8000-00000000dead', vmUuid: '6a1b2c3d-0000-4000-8000-00000000beef', domid: 99, device: '0' };
    const name = await env.plugVif(ghost);
    await waitFor(async () => {
      const m = await env.getMap('Interface', name, 'external_ids');
      return m['iface-id'] === ghost.vifUuid && m['vm-id'] === ghost.vmUuid && m['iface-status'] === 'active';
    }, 10_000, 'unknown VIF defaults');
  });

  it('gives a starting VM\'s port its ids without an XAPI lookup on the port\'s path', async () => {
    // VM.start as XAPI does it: host reserved first, the VIF's port plugged, then resident_on.
    const net = env.vifs[0]!;
    const vm = env.sim.state.addVm({ name_label: 'starting' });
    const mac = '02:00:00:00:77:00';
    const vif = env.sim.state.addVif({ vm: vm.ref, network: net.bridge, device: '0', MAC: mac });
    const task = env.sim.state.beginVmPlacement(vm.ref, env.sim.thisHost.ref);
    const lookups = (): number => (env.sim.counters.calls['VIF.get_all_records_where'] ?? 0) + (env.sim.counters.calls['VM.get_all_records_where'] ?? 0);
    const before = lookups();
    await waitFor(() => Promise.resolve(lookups() >= before + 2), 5_000, 'the VM and its VIFs fetched ahead');
    // A quiet window on purpose: lookups still answering land before `ahead` is taken, so that any
    // lookup counted after it comes from the port's path.
    await new Promise((r) => setTimeout(r, 100));
    const ahead = lookups();
    const name = await env.plugVif({ ...net, vifUuid: vif.uuid, vmUuid: vm.uuid, mac, domid: 77, device: '0' });
    await waitFor(async () => {
      const m = await env.getMap('Interface', name, 'external_ids');
      return m['iface-id'] === vif.uuid && m['vm-id'] === vm.uuid;
    }, 10_000, 'ids of the starting VM\'s port');
    expect(lookups()).toBe(ahead);
    env.sim.state.completeVmPlacement(vm.ref, task, 77);
  });

  it('keeps a foreign key written by ovs-vsctl on an owned row through every pass', async () => {
    const vif = env.vifs[0]!;
    const name = `vif${vif.domid}.${vif.device}`;
    await env.db.vsctl('set', 'Interface', name, 'external_ids:iface-id=tampered', 'external_ids:another-foreign=1');
    await waitFor(async () => (await env.getKey('Interface', name, 'external_ids', 'iface-id')) === vif.vifUuid, 5_000, 'iface-id restored');
    const m = await env.getMap('Interface', name, 'external_ids');
    expect(m['another-foreign']).toBe('1');
    expect(m['controller-owned']).toBe('keep-me');
  });

  it('sends no transaction on a pass after convergence', async () => {
    const url = await daemon.healthUrl();
    const txns = (): Promise<number> => metricValue(url, 'ovs_xapi_sync_ovsdb_transactions_total', { result: 'committed' });
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, 10_000, 'ready');
    const before = await txns();
    const passesBefore = daemon.logs.length;
    const flush = await env.appctl(daemon.controlPath, 'flush-cache');
    expect(flush.code).toBe(0);
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200 && daemon.logs.length > passesBefore, 10_000, 'ready after flush');
    // A sleep on purpose: the point is that no transaction is sent in the window after convergence.
    await new Promise((r) => setTimeout(r, 300));
    expect(await txns()).toBe(before);
  });

  it('measures how far the database lags behind OVSDB and XAPI changes', async () => {
    const url = await daemon.healthUrl();
    for (const source of ['ovsdb', 'xapi']) {
      expect(await metricValue(url, 'ovs_xapi_sync_event_lag_seconds_count', { source }), source).toBeGreaterThan(0);
    }
  });

  it('exits 0 within 5 s on SIGTERM and removes its pidfile and control socket', async () => {
    expect(existsSync(join(env.rundir, 'ovs-xapi-sync.pid'))).toBe(true);
    const status = await daemon.stop('SIGTERM');
    expect(status.code).toBe(0);
    expect(status.ms).toBeLessThan(5000);
    expect(existsSync(join(env.rundir, 'ovs-xapi-sync.pid'))).toBe(false);
    expect(existsSync(daemon.controlPath)).toBe(false);
  });
});
