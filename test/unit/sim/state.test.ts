import { describe, expect, it } from 'vitest';
import { SCHEMAS } from '../../../src/sim/datamodel/index.js';
import { createIdSource, NULL_REF } from '../../../src/sim/ids.js';
import { SimState } from '../../../src/sim/state.js';
import { evalWhere, MissingField, parseWhere } from '../../../src/sim/where.js';
import { DateTime, Double } from '../../../src/sim/wire/values.js';

function world(): { state: SimState; host: string; vm: string } {
  const state = new SimState(createIdSource(3));
  const host = state.addHost({ hostname: 'h1' }).ref;
  state.addPool({ master: host });
  state.addNetwork({ bridge: 'xenbr0' });
  const vm = state.addVm({ name_label: 'v' }).ref;
  state.addVif({ vm, network: 'xenbr0', device: '0' });
  return { state, host, vm };
}

describe('SimState: placing a VM on a host, as XAPI does it', () => {
  it('reserves the host first (host operation, then the public scheduled_to_be_resident_on), then makes the VM resident', () => {
    const { state, host, vm } = world();
    const g0 = state.generation;
    const task = state.beginVmPlacement(vm, host);
    const hostRow = state.byRef('host', host)!;
    const vmRow = state.byRef('VM', vm)!;
    expect(hostRow.modified).toBeGreaterThan(g0);
    // allocate_vm_to_host: the host operation is written before the reservation.
    expect(vmRow.modified).toBeGreaterThan(hostRow.modified);
    expect(state.record(hostRow).current_operations).toEqual({ [task]: 'vm_start' });
    expect(state.record(hostRow).resident_VMs).toEqual([]);
    // Public (datamodel_vm.ml:2844-2857): in the record, hence in event snapshots.
    expect(state.record(vmRow).scheduled_to_be_resident_on).toBe(host);
    const scheduledHere = parseWhere(`field "scheduled_to_be_resident_on"="${host}"`);
    expect(evalWhere(scheduledHere, state.columns(vmRow))).toBe(true);

    state.completeVmPlacement(vm, task, 5);
    expect(state.record(hostRow).resident_VMs).toEqual([vm]);
    expect(state.record(hostRow).current_operations).toEqual({});
    expect(state.record(vmRow)).toMatchObject({ resident_on: host, power_state: 'Running', domid: 5, scheduled_to_be_resident_on: NULL_REF });
    expect(evalWhere(scheduledHere, state.columns(vmRow))).toBe(false);
  });

  it('a failed placement clears the reservation and the operation, and the VM stays halted', () => {
    const { state, host, vm } = world();
    const task = state.beginVmPlacement(vm, host, 'vm_resume');
    state.abortVmPlacement(vm, task);
    expect(state.record(state.byRef('host', host)!).current_operations).toEqual({});
    expect(state.record(state.byRef('VM', vm)!)).toMatchObject({ scheduled_to_be_resident_on: NULL_REF, resident_on: NULL_REF, power_state: 'Halted' });
    expect(() => { state.completeVmPlacement(vm, task, 1); }).toThrow(/not being placed/);
  });
});

describe('SimState: records as wide as the datamodel', () => {
  it('VM, VIF, host, pool and network records carry every public field, in datamodel order', () => {
    const { state, vm } = world();
    const vmRecord = state.record(state.byRef('VM', vm)!);
    expect(Object.keys(vmRecord)).toStrictEqual([...SCHEMAS.VM.fields]);
    expect(Object.keys(vmRecord).length).toBeGreaterThanOrEqual(90);
    expect(vmRecord.HVM_shadow_multiplier).toBeInstanceOf(Double);
    expect(vmRecord.snapshot_time).toBeInstanceOf(DateTime);
    expect(Object.keys(vmRecord.bios_strings as object).length).toBeGreaterThan(10);
    expect(vmRecord).not.toHaveProperty('recommended_guidances');
    expect(Object.keys(state.record(state.all('VIF')[0]!)).length).toBeGreaterThanOrEqual(28);
    expect(state.record(state.all('VIF')[0]!)).not.toHaveProperty('reserved');
    expect(Object.keys(state.record(state.all('host')[0]!)).length).toBeGreaterThanOrEqual(75);
    expect(Object.keys(state.record(state.all('pool')[0]!)).length).toBeGreaterThanOrEqual(60);
    expect(Object.keys(state.record(state.all('network')[0]!))).toContain('purpose');
  });

  it('rows share default values instead of copying them', () => {
    const { state } = world();
    const a = state.addVm({ name_label: 'a' });
    const b = state.addVm({ name_label: 'b' });
    const ra = state.record(state.byRef('VM', a.ref)!);
    const rb = state.record(state.byRef('VM', b.ref)!);
    expect(ra.bios_strings).toBe(rb.bios_strings);
    expect(Object.isFrozen(ra.platform)).toBe(true);
    expect(Object.keys(state.byRef('VM', a.ref)!.fields).length).toBeLessThan(15);
  });

  it('a filter sees DB columns: namespaced fields join with "__", internal columns exist, unknown ones are missing', () => {
    const { state, vm } = world();
    const row = state.byRef('VM', vm)!;
    expect(evalWhere(parseWhere('field "name__label"="v"'), state.columns(row))).toBe(true);
    expect(() => evalWhere(parseWhere('field "name_label"="v"'), state.columns(row))).toThrow(MissingField);
    expect(evalWhere(parseWhere('field "recommended_guidances"="()"'), state.columns(row))).toBe(true);
    const vif = state.all('VIF')[0]!.ref;
    expect(evalWhere(parseWhere(`field "VIFs"="('${vif}')"`), state.columns(row))).toBe(true);
  });
});

describe('SimState: deleted rows (ocaml/database/db_cache_types.ml:239-258)', () => {
  it('keeps at most 511 deletions per table, cut back to the newest 257 when the queue fills', () => {
    const state = new SimState(createIdSource(4));
    const host = state.addHost({ hostname: 'h' }).ref;
    state.addPool({ master: host });
    const start = state.generation;
    const refs: string[] = [];
    for (let i = 0; i < 512; i++) refs.push(state.addNetwork({ bridge: `b${i}` }).ref);
    for (const r of refs.slice(0, 511)) state.removeNetwork(r);
    expect(state.deletions('network', start)).toHaveLength(511);
    state.removeNetwork(refs[511]!);
    const kept = state.deletions('network', start);
    expect(kept).toHaveLength(257);
    expect(kept.map((t) => t.ref)).toStrictEqual(refs.slice(512 - 257));
    // Another table's queue is its own.
    expect(state.deletions('VM', start)).toHaveLength(0);
  });

  it('event.inject stamps the row above the token it returns and consumes two generations', () => {
    const { state, vm } = world();
    const before = state.generation;
    const token = state.inject('VM', vm);
    expect(token).toBe(before);
    expect(state.byRef('VM', vm)!.modified).toBe(before + 1);
    expect(state.generation).toBe(before + 2);
  });
});
