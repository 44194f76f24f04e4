/**
 * A daemon on a pool member reached over http (issue 13 §2): the member answers the login with
 * HOST_IS_SLAVE [master] and the session lives on the master, whose `session.get_this_host` names the
 * master (docs/xapi.md §8). The daemon must still publish this host's INSTALLATION_UUID and follow the
 * VMs resident here, not the master's.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTALLATION_UUID, startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';

const USER = 'root';
const PASSWORD = 'member-test-password';

describe('a daemon pointed at a pool member over http', () => {
  let env: HostEnv;
  let daemon: Daemon;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 4, vifsPerVm: 1, hosts: 2, poolMember: true, credentials: { user: USER, password: PASSWORD } });
    const file = join(env.dir, 'xapi.password');
    writeFileSync(file, `${PASSWORD}\n`);
    chmodSync(file, 0o600);
    await env.addBridges();
    daemon = env.startDaemon({ args: ['--xapi-user', USER, '--xapi-password-file', file] });
  });

  afterAll(async () => {
    await env.close();
  });

  it('is redirected to the master and publishes this host’s INSTALLATION_UUID, not the master’s', async () => {
    const pool = env.sim.pool;
    if (pool === undefined) throw new Error('the simulator is not in pool-member mode');
    expect(env.xapiUrl).not.toBe(pool.masterUrl);
    const masterRef = env.sim.state.all('pool')[0]!.fields.master;
    const master = typeof masterRef === 'string' ? env.sim.state.byRef('host', masterRef) : undefined;
    expect(master?.uuid).not.toBe(INSTALLATION_UUID);
    expect(env.sim.thisHost.uuid).toBe(INSTALLATION_UUID);
    await waitFor(async () => (await env.getKey('Open_vSwitch', '.', 'external_ids', 'system-id')) === INSTALLATION_UUID, 15_000, 'system-id');
    expect(await env.getKey('Open_vSwitch', '.', 'external_ids', 'xs-system-uuid')).toBe(INSTALLATION_UUID);
    // The watcher found its host by the inventory's uuid; the session's this_host would be the master.
    expect(env.sim.counters.calls['host.get_by_uuid'] ?? 0).toBeGreaterThan(0);
    await daemon.waitForLog((l) => JSON.stringify(l).includes('HOST_IS_SLAVE') || JSON.stringify(l).includes(new URL(pool.masterUrl).hostname));
  });

  it('follows the VMs resident on this member: a local port gets the override its VIF has on the master', async () => {
    const vif = env.vifs[0];
    if (vif === undefined) throw new Error('no VM resident on this member');
    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'member-port-1');
    const name = await env.plugVif(vif);
    await waitFor(async () => (await env.getKey('Interface', name, 'external_ids', 'iface-id')) === 'member-port-1', 15_000, 'iface-id override');
    expect(await env.getKey('Interface', name, 'external_ids', 'vm-id')).toBe(vif.vmUuid);
    // A VM on the master is not this host's: its VIFs are not among this host's ports.
    const masterVms = env.sim.state.all('VM').filter((vm) => vm.fields.resident_on !== env.sim.thisHost.ref && vm.fields.is_control_domain !== true);
    expect(masterVms.length).toBeGreaterThan(0);
    expect(env.vifs.every((v) => !masterVms.some((vm) => vm.uuid === v.vmUuid))).toBe(true);
  });
});
