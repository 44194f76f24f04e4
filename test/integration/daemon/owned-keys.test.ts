/**
 * Issue 13 §5 against the real ovsdb-server and the XAPI simulator, the daemon as a child process:
 * `external_ids:neutron-port-uuid` as the ovs-xapi-sync of XenServer 8 / XCP-ng 8.3 writes it, and
 * `managedKeys` leaving a key to another writer (a Neutron agent owning `iface-id`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANAGED_KEYS } from '../../../src/reconcile/changeset.js';
import { startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';

describe('owned keys: neutron-port-uuid and managedKeys', () => {
  let env: HostEnv;
  let daemon: Daemon;

  const key = (name: string, k: string): Promise<string | undefined> => env.getKey('Interface', name, 'external_ids', k);
  const until = (name: string, k: string, want: string | undefined, what: string): Promise<unknown> =>
    waitFor(async () => (await key(name, k)) === want, 10_000, what);

  beforeAll(async () => {
    env = await startHostEnv({ vms: 2, vifsPerVm: 1 });
    await env.addBridges();
    daemon = env.startDaemon();
  });

  afterAll(async () => {
    await env.close();
  });

  it("writes neutron-port-uuid on a vif from the VIF's neutron-port-uuid, else nicira-iface-id, and removes it when both go", async () => {
    const vif = env.vifs[0]!;
    const name = await env.plugVif(vif);
    await until(name, 'iface-id', vif.vifUuid, 'default iface-id');
    expect(await key(name, 'neutron-port-uuid')).toBeUndefined();

    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'neutron-port-uuid', 'port-from-neutron');
    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'custom-iface');
    await until(name, 'neutron-port-uuid', 'port-from-neutron', 'neutron-port-uuid from neutron-port-uuid');
    expect(await key(name, 'iface-id')).toBe('custom-iface');

    env.sim.state.removeFromOtherConfig('VIF', vif.vifUuid, 'neutron-port-uuid');
    await until(name, 'neutron-port-uuid', 'custom-iface', 'neutron-port-uuid falls back to nicira-iface-id');

    env.sim.state.removeFromOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id');
    await until(name, 'iface-id', vif.vifUuid, 'iface-id back to the uuid');
    await until(name, 'neutron-port-uuid', undefined, 'neutron-port-uuid removed');
  });

  it('leaves neutron-port-uuid alone on the tap', async () => {
    const vif = env.vifs[0]!;
    const vifName = `vif${vif.domid}.${vif.device}`;
    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'neutron-port-uuid', 'port-2');
    await until(vifName, 'neutron-port-uuid', 'port-2', 'neutron-port-uuid on the vif');
    const tap = await env.plugTap(vif);
    await until(tap, 'iface-status', 'active', 'tap active');
    await until(vifName, 'iface-status', 'inactive', 'vif inactive');
    expect(await key(tap, 'iface-id')).toBe(vif.vifUuid);
    expect(await key(tap, 'neutron-port-uuid')).toBeUndefined();
    expect(await key(vifName, 'neutron-port-uuid')).toBe('port-2');
    await env.unplug(tap);
    await until(vifName, 'iface-status', 'active', 'vif active again');
  });

  describe('with managedKeys leaving iface-id to another writer', () => {
    const managed = MANAGED_KEYS.filter((k) => k !== 'iface-id').join(',');

    beforeAll(async () => {
      await daemon.stop();
      daemon = env.startDaemon({ env: { OVS_XAPI_SYNC_MANAGED_KEYS: managed } });
    });

    it('never writes, removes or restores iface-id, through reconciles and churn', async () => {
      const vif = env.vifs[1]!;
      // The other writer (a Neutron agent) sets iface-id as the port appears.
      const name = await env.plugVif(vif, { 'iface-id': 'agent-port' });
      await until(name, 'vm-id', vif.vmUuid, 'vm-id written');
      await until(name, 'iface-status', 'active', 'iface-status written');
      expect(await key(name, 'iface-id')).toBe('agent-port');

      // An XAPI override of iface-id: the daemon applies what it manages (neutron-port-uuid) only.
      env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'xapi-iface');
      await until(name, 'neutron-port-uuid', 'xapi-iface', 'neutron-port-uuid follows the VIF');
      expect(await key(name, 'iface-id')).toBe('agent-port');

      // The other writer changes its key while someone tampers with an owned one: the pass that
      // restores vm-id leaves iface-id as the other writer left it.
      await env.db.vsctl('set', 'Interface', name, 'external_ids:iface-id=agent-port-2', 'external_ids:vm-id=tampered');
      await until(name, 'vm-id', vif.vmUuid, 'vm-id restored');
      expect(await key(name, 'iface-id')).toBe('agent-port-2');

      // A tap comes and goes: the pair is re-evaluated, iface-id is copied nowhere and kept on the vif.
      const tap = await env.plugTap(vif);
      await until(tap, 'iface-status', 'active', 'tap active');
      await until(name, 'iface-status', 'inactive', 'vif inactive');
      expect(await key(tap, 'vm-id')).toBe(vif.vmUuid);
      expect(await key(tap, 'iface-id')).toBeUndefined();
      await env.unplug(tap);
      await until(name, 'iface-status', 'active', 'vif active again');
      expect(await key(name, 'iface-id')).toBe('agent-port-2');

      // The other writer removes its key: the daemon does not put one back, even on a full pass.
      await env.db.vsctl('remove', 'Interface', name, 'external_ids', 'iface-id', '--', 'set', 'Interface', name, 'external_ids:iface-status=x');
      await until(name, 'iface-status', 'active', 'iface-status restored');
      const flush = await env.appctl(daemon.controlPath, 'flush-cache');
      expect(flush.code).toBe(0);
      env.sim.state.removeFromOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id');
      expect(env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'xapi-iface-2')).toBe(true);
      await until(name, 'neutron-port-uuid', 'xapi-iface-2', 'a pass after flush-cache');
      expect(await key(name, 'iface-id')).toBeUndefined();
    });
  });
});
