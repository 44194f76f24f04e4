import { NULL_REF } from './ids.js';
import { abortPlacement, beginPlacement, completePlacement, type PlacementOperation } from './lifecycle.js';
import { checkMapKey, link, SimStateError, SimStore, toStruct, type SimClass, type SimRow, type StringMap } from './store.js';
import { setMember, text, type SimValue } from './wire/values.js';

export { checkMapKey, SIM_CLASSES, SimStateError } from './store.js';
export type { SimClass, SimRow, StringMap, Tombstone } from './store.js';

export interface AddNetwork {
  uuid?: string;
  bridge: string;
  name_label?: string;
  other_config?: StringMap;
  MTU?: number;
}
export interface AddHost {
  uuid?: string;
  hostname: string;
  address?: string;
  software_version?: StringMap;
}
export interface AddVm {
  uuid?: string;
  name_label?: string;
  /** Host ref or uuid; omitted/null → not resident (Halted, domid -1). */
  resident_on?: string | null;
  domid?: number;
  power_state?: 'Halted' | 'Paused' | 'Running' | 'Suspended';
  is_control_domain?: boolean;
  other_config?: StringMap;
}
export interface AddVif {
  uuid?: string;
  /** VM ref or uuid. */
  vm: string;
  /** Network ref, uuid or bridge name. */
  network: string;
  device: string;
  MAC?: string;
  MTU?: number;
  currently_attached?: boolean;
  other_config?: StringMap;
}
export interface UpdateVm {
  resident_on?: string | null;
  domid?: number;
  power_state?: 'Halted' | 'Paused' | 'Running' | 'Suspended';
  name_label?: string;
}

export interface Created {
  readonly ref: string;
  readonly uuid: string;
}

const DEFAULT_SOFTWARE_VERSION: StringMap = {
  product_version: '8.3.0',
  product_version_text: '8.3',
  product_version_text_short: '8.3',
  platform_name: 'XCP',
  platform_version: '3.4.0',
  product_brand: 'XCP-ng',
  build_number: 'release/yangtze/master/58',
  xapi: '24.19',
  xapi_build: '24.19.2',
  xen: '4.17.4-3',
  linux: '4.19.0+1',
  network_backend: 'openvswitch',
  db_schema: '5.780',
};

/** The simulator's database with the writes xapi makes (each one a new generation). */
export class SimState extends SimStore {
  addPool(options: { uuid?: string; master: string; other_config?: StringMap }): Created {
    const row = this.insert('pool', options.uuid, { master: options.master, other_config: toStruct(options.other_config) });
    this.notify();
    return row;
  }

  addHost(options: AddHost): Created {
    const software = { ...DEFAULT_SOFTWARE_VERSION, hostname: options.hostname, ...options.software_version };
    const row = this.insert('host', options.uuid, {
      name_label: options.hostname,
      name_description: 'Default install',
      hostname: options.hostname,
      // Loopback, never a routable address: a client that learns the pool's members (failover) may dial
      // them, and tests must send nothing off this machine. Pool mode assigns 127.0.0.(2+i) explicitly.
      address: options.address ?? `127.0.0.${String(this.count('host') + 2)}`,
      software_version: toStruct(software),
      other_config: {},
      current_operations: {},
    });
    this.notify();
    return row;
  }

  addNetwork(options: AddNetwork): Created {
    const row = this.insert('network', options.uuid, {
      name_label: options.name_label ?? `Pool-wide network associated with ${options.bridge}`,
      bridge: options.bridge,
      MTU: options.MTU ?? 1500,
      other_config: toStruct(options.other_config),
    });
    this.notify();
    return row;
  }

  addVm(options: AddVm): Created {
    const host = options.resident_on === undefined || options.resident_on === null ? undefined : this.resolve('host', options.resident_on);
    const running = host !== undefined;
    const row = this.insert('VM', options.uuid, {
      name_label: options.name_label ?? 'vm',
      power_state: options.power_state ?? (running ? 'Running' : 'Halted'),
      resident_on: NULL_REF,
      scheduled_to_be_resident_on: NULL_REF,
      affinity: host?.ref ?? NULL_REF,
      domid: options.domid ?? (running ? 1 : -1),
      is_control_domain: options.is_control_domain ?? false,
      is_a_template: false,
      is_a_snapshot: false,
      other_config: toStruct(options.other_config),
      ...(options.is_control_domain === true ? { domain_type: 'pv', HVM_boot_policy: '', HVM_boot_params: {}, platform: {} } : {}),
    });
    if (host !== undefined) this.setFields(row, { resident_on: host.ref }, row.created);
    this.notify();
    return row;
  }

  updateVm(id: string, patch: UpdateVm): void {
    const row = this.resolve('VM', id);
    const fields: Record<string, SimValue> = {};
    if (patch.resident_on !== undefined) fields.resident_on = patch.resident_on === null ? NULL_REF : this.resolve('host', patch.resident_on).ref;
    if (patch.domid !== undefined) fields.domid = patch.domid;
    if (patch.power_state !== undefined) fields.power_state = patch.power_state;
    if (patch.name_label !== undefined) fields.name_label = patch.name_label;
    this.setFields(row, fields);
    this.notify();
  }

  /** See lifecycle.ts `beginPlacement`; returns the task ref keying the host operation. */
  beginVmPlacement(vmId: string, hostId: string, operation: PlacementOperation = 'vm_start'): string {
    return beginPlacement(this, vmId, hostId, operation);
  }

  /** See lifecycle.ts `completePlacement`. */
  completeVmPlacement(vmId: string, task: string, domid: number): void {
    completePlacement(this, vmId, task, domid);
  }

  /** See lifecycle.ts `abortPlacement`. */
  abortVmPlacement(vmId: string, task: string): void {
    abortPlacement(this, vmId, task);
  }

  /** Destroys a VM and its VIFs (XAPI destroys a VM's VIFs with it). */
  removeVm(id: string): void {
    const row = this.resolve('VM', id);
    for (const vif of this.vifsOf(row.ref)) this.destroyVif(vif);
    this.setFields(row, { resident_on: NULL_REF });
    this.remove(row);
    this.notify();
  }

  /** The VIF rows of a VM. */
  vifsOf(vmRef: string): SimRow[] {
    return [...(this.vifsByVm.get(vmRef) ?? [])].map((r) => this.byRef('VIF', r)).filter((r) => r !== undefined);
  }

  addVif(options: AddVif): Created {
    const vm = this.resolve('VM', options.vm);
    const network = this.resolve('network', options.network);
    if (!/^\d+$/.test(options.device)) throw new SimStateError(`VIF device ${JSON.stringify(options.device)} must be a decimal string`);
    const row = this.insert('VIF', options.uuid, {
      device: options.device,
      MAC: options.MAC ?? this.ids.mac(),
      MTU: options.MTU ?? 1500,
      VM: vm.ref,
      network: network.ref,
      currently_attached: options.currently_attached ?? vm.fields.power_state === 'Running',
      other_config: toStruct(options.other_config),
      MAC_autogenerated: options.MAC === undefined,
    });
    link(this.vifsByVm, vm.ref, row.ref);
    link(this.vifsByNetwork, network.ref, row.ref);
    // Adding a VIF changes the VIFs set of its VM and network: both are modified (eventgen.ml).
    this.touchRow(vm, row.created);
    this.touchRow(network, row.created);
    this.notify();
    return row;
  }

  private destroyVif(row: SimRow): void {
    this.remove(row);
    const g = this.generation;
    const vm = typeof row.fields.VM === 'string' ? this.byRef('VM', row.fields.VM) : undefined;
    const net = typeof row.fields.network === 'string' ? this.byRef('network', row.fields.network) : undefined;
    this.vifsByVm.get(text(row.fields.VM))?.delete(row.ref);
    this.vifsByNetwork.get(text(row.fields.network))?.delete(row.ref);
    if (vm !== undefined) this.touchRow(vm, g);
    if (net !== undefined) this.touchRow(net, g);
  }

  removeVif(id: string): void {
    this.destroyVif(this.resolve('VIF', id));
    this.notify();
  }

  removeNetwork(id: string): void {
    const row = this.resolve('network', id);
    if ((this.vifsByNetwork.get(row.ref)?.size ?? 0) > 0) throw new SimStateError(`network ${row.uuid} still has VIFs`);
    this.remove(row);
    this.notify();
  }

  setOtherConfig(cls: SimClass, id: string, map: StringMap): void {
    this.setFields(this.resolve(cls, id), { other_config: toStruct(map) });
    this.notify();
  }

  /** Returns false when the key already exists (the caller maps that to MAP_DUPLICATE_KEY). */
  addToOtherConfig(cls: SimClass, id: string, key: string, value: string): boolean {
    const row = this.resolve(cls, id);
    checkMapKey(key);
    const oc = this.ownMap(row, 'other_config');
    if (Object.hasOwn(oc, key)) return false;
    setMember(oc, key, value);
    this.touchRow(row);
    this.notify();
    return true;
  }

  /** Removing an absent key is a no-op, as in XAPI (no generation bump). */
  removeFromOtherConfig(cls: SimClass, id: string, key: string): void {
    const row = this.resolve(cls, id);
    const oc = this.ownMap(row, 'other_config');
    if (!Object.hasOwn(oc, key)) return;
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
    delete oc[key];
    this.touchRow(row);
    this.notify();
  }

  setHostSoftwareVersion(id: string, map: StringMap): void {
    this.setFields(this.resolve('host', id), { software_version: toStruct(map) });
    this.notify();
  }

  /** Marks a row modified (the control API's touch); returns the new generation. */
  touch(cls: SimClass, id: string): number {
    const row = this.resolve(cls, id);
    this.touchRow(row);
    this.notify();
    return this.generation;
  }

  /**
   * `event.inject`'s write (`Db_cache_types.touch`, db_cache_types.ml:697-710): the row is stamped
   * with the current generation and the generation advances twice; the answer is the generation
   * before the stamp, so a later event.from from it always shows the row.
   */
  inject(cls: SimClass, ref: string): number {
    const row = this.resolve(cls, ref);
    const before = this.generation;
    this.touchRow(row, this.bump());
    this.bump();
    this.notify();
    return before;
  }
}
