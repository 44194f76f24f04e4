import { describe, expect, it } from 'vitest';
import { createIdSource, NULL_REF } from '../../../src/sim/ids.js';
import { SimState } from '../../../src/sim/state.js';
import { evalWhere, parseWhere, whereFields } from '../../../src/sim/where.js';

function world(): { state: SimState; host: string; vm: string } {
  const state = new SimState(createIdSource(3));
  const host = state.addHost({ hostname: 'h1' }).ref;
  state.addNetwork({ bridge: 'xenbr0' });
  const vm = state.addVm({ name_label: 'v' }).ref;
  state.addVif({ vm, network: 'xenbr0', device: '0' });
  return { state, host, vm };
}

describe('SimState: placing a VM on a host, as XAPI does it', () => {
  it('reserves the host first (internal column, host operation), then makes the VM resident', () => {
    const { state, host, vm } = world();
    const g0 = state.generation;
    const task = state.beginVmPlacement(vm, host);
    const hostRow = state.byRef('host', host)!;
    const vmRow = state.byRef('VM', vm)!;
    expect(hostRow.modified).toBeGreaterThan(g0);
    expect(state.record(hostRow).current_operations).toEqual({ [task]: 'vm_start' });
    expect(state.record(hostRow).resident_VMs).toEqual([]);
    // Internal to XAPI: not in the record (nor in event snapshots), but a filter sees it.
    expect(state.record(vmRow)).not.toHaveProperty('scheduled_to_be_resident_on');
    const scheduledHere = parseWhere(`field "scheduled_to_be_resident_on"="${host}"`);
    expect(evalWhere(scheduledHere, state.dbRow(vmRow, whereFields(scheduledHere)))).toBe(true);

    state.completeVmPlacement(vm, task, 5);
    expect(state.record(hostRow).resident_VMs).toEqual([vm]);
    expect(state.record(hostRow).current_operations).toEqual({});
    expect(state.record(vmRow)).toMatchObject({ resident_on: host, power_state: 'Running', domid: 5 });
    expect(evalWhere(scheduledHere, state.dbRow(vmRow, whereFields(scheduledHere)))).toBe(false);
  });

  it('a failed placement clears the reservation and the operation, and the VM stays halted', () => {
    const { state, host, vm } = world();
    const task = state.beginVmPlacement(vm, host, 'vm_resume');
    state.abortVmPlacement(vm, task);
    expect(state.record(state.byRef('host', host)!).current_operations).toEqual({});
    expect(state.dbRow(state.byRef('VM', vm)!, new Set())).toMatchObject({ scheduled_to_be_resident_on: NULL_REF, resident_on: NULL_REF, power_state: 'Halted' });
    expect(() => { state.completeVmPlacement(vm, task, 1); }).toThrow(/not being placed/);
  });

  it('derives the ref-set columns for a filter only when it reads them', () => {
    const { state, vm } = world();
    const row = state.byRef('VM', vm)!;
    expect(state.dbRow(row, whereFields(parseWhere('field "name__label"="v"')))).not.toHaveProperty('VIFs');
    const vif = state.all('VIF')[0]!.ref;
    expect(evalWhere(parseWhere(`field "VIFs"="('${vif}')"`), state.dbRow(row, whereFields(parseWhere('field "VIFs"="x"'))))).toBe(true);
  });
});
