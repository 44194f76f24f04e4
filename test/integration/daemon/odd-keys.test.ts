/**
 * Map keys as xapi really stores and sends them (issue 13 §1): the database accepts `&` and `<` in
 * other_config keys and ocaml-rpc writes XML-RPC member names unescaped (docs/xapi.md §2), so one such
 * key on the pool or on a followed VIF once made every reply undecodable and the whole XAPI view down.
 * The simulator emits the same bytes; CI runs this file in both protocols (OXS_TEST_XAPI_PROTOCOL).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';
import { FAST_ENV, waitReadyz } from '../operations/helpers.js';

describe('other_config keys with & and < on the pool and on a followed VIF', () => {
  let env: HostEnv;
  let daemon: Daemon;
  let base: string;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 2, vifsPerVm: 1 });
    const pool = env.sim.state.all('pool')[0]!;
    env.sim.state.setOtherConfig('pool', pool.ref, { 'a&b': '1', 'x<y>z': '2', 'vswitch-controller-fail-mode': 'secure' });
    const vif = env.vifs[0]!;
    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'a&b', 'odd');
    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, '<tag>', 'odder');
    env.sim.state.addToOtherConfig('VIF', vif.vifUuid, 'nicira-iface-id', 'odd-port');
    await env.addBridges();
    daemon = env.startDaemon({ env: FAST_ENV });
    base = await daemon.healthUrl();
  });

  afterAll(async () => {
    await env.close();
  });

  it('keeps the XAPI view live and gives the affected objects the right ids', async () => {
    const [odd, plain] = env.vifs;
    const oddName = await env.plugVif(odd!);
    const plainName = await env.plugVif(plain!);
    await waitFor(async () => (await env.getKey('Interface', oddName, 'external_ids', 'iface-id')) === 'odd-port', 15_000, 'the odd VIF’s override');
    await waitFor(async () => (await env.getKey('Interface', plainName, 'external_ids', 'iface-id')) === plain!.vifUuid, 15_000, 'the plain VIF’s default');
    // The pool record (with its odd keys) was read: its fail mode reaches the bridges.
    await waitFor(async () => (await env.getColumn('Bridge', odd!.bridge, 'fail_mode')) === 'secure', 15_000, 'the pool’s fail mode');
    const ready = await waitReadyz(base, 200, 'ready with odd keys');
    expect(ready.checks?.xapi?.ok).toBe(true);
  });

  it('still follows events: a change on the VIF with odd keys reaches the database', async () => {
    const odd = env.vifs[0]!;
    env.sim.state.removeFromOtherConfig('VIF', odd.vifUuid, 'nicira-iface-id');
    expect(env.sim.state.addToOtherConfig('VIF', odd.vifUuid, 'nicira-iface-id', 'odd-port-2')).toBe(true);
    const name = `vif${odd.domid}.${odd.device}`;
    await waitFor(async () => (await env.getKey('Interface', name, 'external_ids', 'iface-id')) === 'odd-port-2', 15_000, 'the changed override');
    expect(daemon.child.exitCode).toBeNull();
  });
});
