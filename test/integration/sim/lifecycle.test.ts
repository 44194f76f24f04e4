import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NULL_REF } from '../../../src/sim/ids.js';
import { startSimulator, type PortInfo, type Simulator } from '../../../src/sim/index.js';
import { jsonResult } from './rpc-helper.js';

/*
 * Lifecycle helpers write in xapi's order (xen-api ocaml/xapi/message_forwarding.ml:1562-1598,
 * 3094-3100; ocaml/xapi/xapi_xenops.ml:3860-3925, 4342, 4416; ocaml/xapi/xapi_vm_lifecycle.ml:922-930),
 * and a client following event.from sees each step.
 */
interface Event {
  class: string;
  operation: string;
  ref: string;
  snapshot?: Record<string, unknown>;
}

let sim: Simulator;
let session: string;
let token: string;
const target = (): { url: string } => ({ url: sim.url! });

beforeEach(async () => {
  sim = await startSimulator({
    fixture: { hosts: [{ hostname: 'h0' }, { hostname: 'h1' }], networks: [{ bridge: 'xenbr0' }], vms: [{ resident_on: null, vifs: [{ device: '0', network: 'xenbr0' }, { device: '1', network: 'xenbr0' }] }] },
    eventDelayMs: 1,
  });
  session = (await jsonResult(target(), 'session.login_with_password', ['', ''])) as string;
  token = (await jsonResult(target(), 'event.inject', [session, 'pool', sim.state.all('pool')[0]!.ref])) as string;
  // Consume the inject itself.
  token = ((await jsonResult(target(), 'event.from', [session, ['*'], token, 1])) as { token: string }).token;
});
afterEach(async () => {
  await sim.close();
});

/** The events since the last call (coalesced per object, as event.from does). */
async function events(classes: string[] = ['vm', 'vif', 'host', 'network']): Promise<Event[]> {
  const batch = (await jsonResult(target(), 'event.from', [session, classes, token, 0.2])) as { events: Event[]; token: string };
  token = batch.token;
  return batch.events;
}

const guest = (): { ref: string; uuid: string } => sim.state.all('VM').find((v) => v.fields.is_control_domain === false)!;

describe('VM lifecycle', () => {
  it('VM.start: the reservation and attached VIFs are visible while the ports are plugged, resident_on only after', async () => {
    const vm = guest();
    const host = sim.thisHost.ref;
    const seenAtPlug: Event[][] = [];
    const plugged: PortInfo[] = [];
    const domid = await sim.lifecycle.vmStart(vm.ref, host, {
      domid: 7,
      plugPort: async (port) => {
        plugged.push(port);
        if (plugged.length === 1) seenAtPlug.push(await events());
      },
    });
    expect(domid).toBe(7);
    expect(plugged.map((p) => [p.device, p.domid, p.bridge, p.vmUuid])).toStrictEqual([
      ['0', 7, 'xenbr0', vm.uuid],
      ['1', 7, 'xenbr0', vm.uuid],
    ]);
    const atPlug = seenAtPlug[0]!;
    const vmAtPlug = atPlug.find((e) => e.ref === vm.ref)!.snapshot!;
    expect(vmAtPlug).toMatchObject({ scheduled_to_be_resident_on: host, resident_on: NULL_REF, domid: 7 });
    expect(Object.values(vmAtPlug.current_operations as object)).toStrictEqual(['start']);
    expect(atPlug.find((e) => e.ref === host)!.snapshot!.current_operations).toSatisfy((ops: object) => Object.values(ops).includes('vm_start'));
    expect(atPlug.filter((e) => e.class === 'vif').map((e) => e.snapshot!.currently_attached)).toStrictEqual([true, true]);
    // A VIF plug/attach never modifies the network row (only create/destroy do).
    expect(atPlug.some((e) => e.class === 'network')).toBe(false);

    const after = await events();
    expect(after.find((e) => e.ref === vm.ref)!.snapshot).toMatchObject({ resident_on: host, scheduled_to_be_resident_on: NULL_REF, power_state: 'Running', current_operations: {} });
    expect(after.find((e) => e.ref === host)!.snapshot).toMatchObject({ current_operations: {}, resident_VMs: expect.arrayContaining([vm.ref]) as unknown });
  });

  it('the writes come in xapi’s order: host operation, reservation, VIFs attached, domain, resident_on', async () => {
    const vm = guest();
    const row = sim.state.byRef('VM', vm.ref)!;
    const stamps: Record<string, number> = {};
    await sim.lifecycle.vmStart(vm.ref, sim.thisHost.ref, {
      plugPort: () => {
        stamps.hostOp = sim.state.byRef('host', sim.thisHost.ref)!.modified;
        stamps.vif = Math.max(...sim.state.vifsOf(vm.ref).map((v) => v.modified));
        stamps.vmAtPlug = row.modified;
      },
    });
    expect(stamps.hostOp).toBeLessThan(stamps.vif!);
    expect(stamps.vif).toBeLessThan(stamps.vmAtPlug!);
    expect(row.modified).toBeGreaterThan(stamps.vmAtPlug!);
  });

  it('shutdown: ports go while the VM still runs, then Halted, resident_on NULL, domid -1; VIFs detached', async () => {
    const vm = guest();
    await sim.lifecycle.vmStart(vm.ref, sim.thisHost.ref, { domid: 3 });
    await events();
    const unplugged: PortInfo[] = [];
    let stateAtUnplug: unknown;
    await sim.lifecycle.vmShutdown(vm.ref, {
      unplugPort: (p) => {
        unplugged.push(p);
        stateAtUnplug ??= sim.state.record(sim.state.byRef('VM', vm.ref)!).power_state;
      },
    });
    expect(unplugged.map((p) => p.domid)).toStrictEqual([3, 3]);
    expect(stateAtUnplug).toBe('Running');
    const after = await events();
    expect(after.find((e) => e.ref === vm.ref)!.snapshot).toMatchObject({ power_state: 'Halted', resident_on: NULL_REF, domid: -1, current_operations: {} });
    expect(after.filter((e) => e.class === 'vif').map((e) => e.snapshot!.currently_attached)).toStrictEqual([false, false]);
    expect(sim.localVifs()).toStrictEqual([]);
  });

  it('migration: the destination is reserved and its ports plugged before resident_on moves; the source ports go last', async () => {
    const vm = guest();
    const [h0, h1] = sim.state.all('host');
    await sim.lifecycle.vmStart(vm.ref, h0!.ref, { domid: 4 });
    await events();
    const order: string[] = [];
    await sim.lifecycle.vmMigrate(vm.ref, h1!.ref, {
      domid: 9,
      plugPort: (p) => {
        const r = sim.state.record(sim.state.byRef('VM', vm.ref)!);
        order.push(`plug ${p.domid} scheduled=${r.scheduled_to_be_resident_on === h1!.ref} resident=${r.resident_on === h0!.ref ? 'h0' : 'h1'}`);
      },
      unplugPort: (p) => {
        const r = sim.state.record(sim.state.byRef('VM', vm.ref)!);
        order.push(`unplug ${p.domid} resident=${r.resident_on === h1!.ref ? 'h1' : 'h0'}`);
      },
    });
    expect(order).toStrictEqual(['plug 9 scheduled=true resident=h0', 'plug 9 scheduled=true resident=h0', 'unplug 4 resident=h1', 'unplug 4 resident=h1']);
    const after = await events(['vm']);
    expect(after[0]!.snapshot).toMatchObject({ resident_on: h1!.ref, domid: 9, scheduled_to_be_resident_on: NULL_REF });
  });
});

describe('VIF lifecycle', () => {
  it('create modifies its VM and network; plug and unplug only the VIF; destroy deletes it and modifies the network', async () => {
    const vm = guest();
    await sim.lifecycle.vmStart(vm.ref, sim.thisHost.ref);
    await events();
    const net = sim.state.all('network')[0]!.ref;
    const vif = sim.lifecycle.vifCreate({ vm: vm.ref, network: net, device: '2' });
    const created = await events();
    expect(created.map((e) => [e.class, e.operation]).sort()).toStrictEqual([['network', 'mod'], ['vif', 'add'], ['vm', 'mod']]);
    expect(created.find((e) => e.class === 'vif')!.snapshot!.currently_attached).toBe(false);

    const plugs: PortInfo[] = [];
    await sim.lifecycle.vifPlug(vif.ref, { plugPort: (p) => { plugs.push(p); } });
    expect(plugs.map((p) => p.device)).toStrictEqual(['2']);
    const plugged = await events();
    expect(plugged.map((e) => [e.class, e.operation])).toStrictEqual([['vif', 'mod']]);
    expect(plugged[0]!.snapshot).toMatchObject({ currently_attached: true, current_operations: {} });

    await sim.lifecycle.vifUnplug(vif.ref);
    const unplugged = await events();
    expect(unplugged.map((e) => [e.class, e.operation])).toStrictEqual([['vif', 'mod']]);
    expect(unplugged[0]!.snapshot!.currently_attached).toBe(false);

    sim.lifecycle.vifDestroy(vif.ref);
    const destroyed = await events();
    expect(destroyed.map((e) => [e.class, e.operation]).sort()).toStrictEqual([['network', 'mod'], ['vif', 'del'], ['vm', 'mod']]);
  });
});
