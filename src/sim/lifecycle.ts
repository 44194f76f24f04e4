import { NULL_REF } from './ids.js';
import type { SimRow } from './store.js';
import type { SimState } from './state.js';
import { setMember, text } from './wire/values.js';

/**
 * Lifecycle operations that write the database in xapi's own order, one write (one generation) per
 * step, so that a client following `event.from` sees the intermediate states a real host shows.
 */

/** A lifecycle operation the VM's state does not allow (the control API answers 400). */
export class LifecycleError extends Error {}

export type PlacementOperation = 'vm_start' | 'vm_resume' | 'vm_migrate';

/** What an OVSDB port `vif<domid>.<device>` needs; the test's hook adds or removes that port. */
export interface PortInfo {
  readonly vifUuid: string;
  readonly vmUuid: string;
  readonly networkUuid: string;
  readonly bridge: string;
  readonly mac: string;
  readonly device: string;
  readonly domid: number;
}
export type PortHook = (port: PortInfo) => void | Promise<void>;

export interface PortHooks {
  /** Called when the vif hotplug script would add the port (the domain exists, before resident_on). */
  readonly plugPort?: PortHook;
  /** Called when the port goes away (domain destroyed or VIF unplugged). */
  readonly unplugPort?: PortHook;
}

function addOperation(state: SimState, row: SimRow, task: string, op: string): void {
  setMember(state.ownMap(row, 'current_operations'), task, op);
  state.touchRow(row);
}

function removeOperation(state: SimState, row: SimRow, task: string): void {
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
  delete state.ownMap(row, 'current_operations')[task];
  state.touchRow(row);
}

/**
 * The first half of VM.start/resume/migrate on a host (`allocate_vm_to_host`,
 * xapi-project/xen-api ocaml/xapi/message_forwarding.ml:1562-1585): the host operation is added to
 * `host.current_operations`, then the memory reservation `VM.scheduled_to_be_resident_on` is set.
 * Returns the task ref keying the host operation.
 */
export function beginPlacement(state: SimState, vmId: string, hostId: string, operation: PlacementOperation, task = state.ids.ref()): string {
  const vm = state.resolve('VM', vmId);
  const host = state.resolve('host', hostId);
  addOperation(state, host, task, operation);
  state.setFields(vm, { scheduled_to_be_resident_on: host.ref });
  state.notify();
  return task;
}

/** The host a VM is being placed on (its reservation); throws when it is not being placed. */
function placementHost(state: SimState, vm: SimRow): SimRow {
  const scheduled = vm.fields.scheduled_to_be_resident_on;
  const host = typeof scheduled === 'string' ? state.byRef('host', scheduled) : undefined;
  if (host === undefined) throw new LifecycleError(`VM ${vm.uuid} is not being placed on a host`);
  return host;
}

/**
 * The domain runs (xenopsd's `update_vm` sets domid and power_state, xapi_xenops.ml:2180-2200), then
 * `VM.atomic_set_resident_on` sets resident_on and clears the reservation in one step
 * (message_forwarding.ml:3094-3100, called from xapi_xenops.ml:3908), then the host operation is
 * removed (`finally_clear_host_operation`, message_forwarding.ml:1588-1598).
 */
export function completePlacement(state: SimState, vmId: string, task: string, domid: number): void {
  const vm = state.resolve('VM', vmId);
  const host = placementHost(state, vm);
  state.setFields(vm, { domid, power_state: 'Running' });
  state.setFields(vm, { resident_on: host.ref, scheduled_to_be_resident_on: NULL_REF });
  removeOperation(state, host, task);
  state.notify();
}

/** A placement that failed: the reservation is cleared (`clear_reservations`), the host operation removed. */
export function abortPlacement(state: SimState, vmId: string, task: string): void {
  const vm = state.resolve('VM', vmId);
  const host = placementHost(state, vm);
  state.setFields(vm, { scheduled_to_be_resident_on: NULL_REF });
  removeOperation(state, host, task);
  state.notify();
}

/** Lifecycle helpers for tests and the demo (see `Simulator.lifecycle`). */
export class SimLifecycle {
  private nextDomid = 100;

  constructor(private readonly state: SimState) {}

  private port(vif: SimRow, vm: SimRow, domid: number): PortInfo {
    const net = this.state.byRef('network', text(vif.fields.network));
    return { vifUuid: vif.uuid, vmUuid: vm.uuid, networkUuid: net?.uuid ?? '', bridge: text(net?.fields.bridge), mac: text(vif.fields.MAC), device: text(vif.fields.device), domid };
  }

  /**
   * VM.start on a host as xapi does it: VM operation `start` (`with_vm_operation`), host reservation
   * (see beginPlacement), every VIF `currently_attached` (xapi_xenops.ml:3876-3878), the domain built
   * (domid, power_state), the ports plugged by the hotplug script (`plugPort`), then resident_on,
   * the host operation and the VM operation cleared. Returns the domid.
   */
  async vmStart(vmId: string, hostId: string, hooks: PortHooks & { readonly domid?: number } = {}): Promise<number> {
    const state = this.state;
    const vm = state.resolve('VM', vmId);
    if (vm.fields.power_state === 'Running') throw new LifecycleError(`VM ${vm.uuid} is already running`);
    const task = state.ids.ref();
    addOperation(state, vm, task, 'start');
    state.notify();
    beginPlacement(state, vm.ref, hostId, 'vm_start', task);
    for (const vif of state.vifsOf(vm.ref)) state.setFields(vif, { currently_attached: true });
    const domid = hooks.domid ?? (this.nextDomid += 1);
    state.setFields(vm, { domid, power_state: 'Paused' });
    state.notify();
    for (const vif of state.vifsOf(vm.ref)) await hooks.plugPort?.(this.port(vif, vm, domid));
    const host = placementHost(state, vm);
    state.setFields(vm, { power_state: 'Running' });
    state.setFields(vm, { resident_on: host.ref, scheduled_to_be_resident_on: NULL_REF });
    removeOperation(state, host, task);
    removeOperation(state, vm, task);
    state.notify();
    return domid;
  }

  /**
   * VM.clean_shutdown: the domain goes (ports unplugged, VIFs detached by xenopsd's device events),
   * then `force_state_reset` writes power_state Halted, resident_on NULL and domid -1
   * (xapi_vm_lifecycle.ml:922-930), and the VM operation is cleared.
   */
  async vmShutdown(vmId: string, hooks: PortHooks = {}): Promise<void> {
    const state = this.state;
    const vm = state.resolve('VM', vmId);
    const task = state.ids.ref();
    const domid = Number(vm.fields.domid);
    addOperation(state, vm, task, 'clean_shutdown');
    state.notify();
    for (const vif of state.vifsOf(vm.ref)) {
      await hooks.unplugPort?.(this.port(vif, vm, domid));
      state.setFields(vif, { currently_attached: false });
    }
    state.setFields(vm, { power_state: 'Halted' });
    state.setFields(vm, { resident_on: NULL_REF });
    state.setFields(vm, { domid: -1 });
    removeOperation(state, vm, task);
    state.notify();
  }

  /**
   * VM.pool_migrate: VM operation, reservation on the destination (host operation `vm_migrate`),
   * the destination domain and its ports, `atomic_set_resident_on` to the destination, the new
   * domid, then the source domain's ports go; operations cleared. Returns the new domid.
   */
  async vmMigrate(vmId: string, toHostId: string, hooks: PortHooks & { readonly domid?: number } = {}): Promise<number> {
    const state = this.state;
    const vm = state.resolve('VM', vmId);
    const oldDomid = Number(vm.fields.domid);
    const task = state.ids.ref();
    addOperation(state, vm, task, 'pool_migrate');
    state.notify();
    beginPlacement(state, vm.ref, toHostId, 'vm_migrate', task);
    const domid = hooks.domid ?? (this.nextDomid += 1);
    for (const vif of state.vifsOf(vm.ref)) await hooks.plugPort?.(this.port(vif, vm, domid));
    const host = placementHost(state, vm);
    state.setFields(vm, { resident_on: host.ref, scheduled_to_be_resident_on: NULL_REF });
    state.setFields(vm, { domid });
    state.notify();
    for (const vif of state.vifsOf(vm.ref)) await hooks.unplugPort?.(this.port(vif, vm, oldDomid));
    removeOperation(state, host, task);
    removeOperation(state, vm, task);
    state.notify();
    return domid;
  }

  /** VIF.create: a new, unplugged VIF (its VM and network are modified: their VIFs sets change). */
  vifCreate(options: { vm: string; network: string; device: string; MAC?: string; other_config?: Readonly<Record<string, string>> }): { ref: string; uuid: string } {
    return this.state.addVif({ ...options, currently_attached: false });
  }

  /** VIF.plug (hotplug on a running VM): operation, port added, `currently_attached` (xapi_xenops.ml:4342). */
  async vifPlug(vifId: string, hooks: PortHooks = {}): Promise<void> {
    await this.vifOperation(vifId, 'plug', true, hooks.plugPort);
  }

  /** VIF.unplug: operation, port removed, `currently_attached` false (xapi_xenops.ml:4416). */
  async vifUnplug(vifId: string, hooks: PortHooks = {}): Promise<void> {
    await this.vifOperation(vifId, 'unplug', false, hooks.unplugPort);
  }

  private async vifOperation(vifId: string, op: 'plug' | 'unplug', attached: boolean, hook: PortHook | undefined): Promise<void> {
    const state = this.state;
    const vif = state.resolve('VIF', vifId);
    const vm = state.resolve('VM', text(vif.fields.VM));
    const task = state.ids.ref();
    addOperation(state, vif, task, op);
    state.notify();
    await hook?.(this.port(vif, vm, Number(vm.fields.domid)));
    state.setFields(vif, { currently_attached: attached });
    removeOperation(state, vif, task);
    state.notify();
  }

  /** VIF.destroy: the row goes; its VM and network are modified. */
  vifDestroy(vifId: string): void {
    this.state.removeVif(vifId);
  }
}
