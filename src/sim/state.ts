import { CodedError } from '../errors.js';
import { defineMember } from '../xapi/codec/safe-object.js';
import type { XapiStruct, XapiValue } from '../xapi/codec/types.js';
import { NULL_REF, type IdSource } from './ids.js';

/**
 * The simulator's object model: the five XAPI classes the daemon reads, with XAPI's generation
 * bookkeeping (reference/xapi.md §5.1): every row carries the DB generation at which it was
 * created, last modified and deleted, so `event.from` can classify add/mod/del and coalesce.
 */

/** Datamodel class names, as used in method names and in UUID_INVALID/HANDLE_INVALID. */
export type SimClass = 'pool' | 'host' | 'network' | 'VIF' | 'VM';
export const SIM_CLASSES: readonly SimClass[] = ['pool', 'host', 'network', 'VIF', 'VM'];

/** Thrown by state mutations given bad input (unknown object, invalid key). */
export class SimStateError extends CodedError<'SIM_STATE'> {
  constructor(message: string) {
    super('SIM_STATE', message);
  }
}

export interface SimRow {
  readonly cls: SimClass;
  readonly ref: string;
  readonly uuid: string;
  /**
   * Stored fields, internal-only ones included (`INTERNAL_FIELDS`); computed ones (VIFs,
   * resident_VMs) are added by `record()`.
   */
  readonly fields: Record<string, XapiValue>;
  created: number;
  modified: number;
}

export interface Tombstone {
  readonly cls: SimClass;
  readonly ref: string;
  readonly created: number;
  readonly deleted: number;
}

export type StringMap = Readonly<Record<string, string>>;

/**
 * DB columns the API does not expose (`~internal_only:true` in the datamodel): absent from records
 * and event snapshots, yet a `get_all_records_where` filter evaluates DB rows and can test them
 * (reference §6). `VM.scheduled_to_be_resident_on` is the memory reservation XAPI makes on the
 * target host before a VM is started, resumed or migrated there (`datamodel_vm.ml`).
 */
const INTERNAL_FIELDS: Readonly<Partial<Record<SimClass, readonly string[]>>> = { VM: ['scheduled_to_be_resident_on'] };

/**
 * Map keys the simulator accepts. rpclib writes struct member names unescaped (reference §2
 * "Surprise"), so a key with `<` or `&` would make XAPI emit a broken XML document; the simulator
 * refuses such keys (and C0 controls) so that it never produces one.
 */
export function checkMapKey(key: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[<&\u0000-\u001f]/.test(key)) throw new SimStateError(`map key ${JSON.stringify(key)} contains '<', '&' or a control character`);
}

function toStruct(map: StringMap | undefined): Record<string, XapiValue> {
  const out: Record<string, XapiValue> = {};
  for (const [k, v] of Object.entries(map ?? {})) {
    checkMapKey(k);
    if (typeof v !== 'string') throw new SimStateError(`map value for ${JSON.stringify(k)} must be a string`);
    defineMember(out, k, v);
  }
  return out;
}

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

export class SimState {
  /** DB generation: bumped by every mutation (reference §5.1 token format). */
  private gen = 0;
  private readonly rows = new Map<SimClass, Map<string, SimRow>>(SIM_CLASSES.map((c) => [c, new Map()]));
  private readonly byUuid = new Map<string, SimRow>();
  private readonly tombstones: Tombstone[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly ids: IdSource) {}

  get generation(): number {
    return this.gen;
  }

  /** Registers a change listener (event.from waiters); returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Wakes waiters without a DB change (e.g. sessions invalidated). */
  notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private bump(): number {
    this.gen += 1;
    return this.gen;
  }

  private insert(cls: SimClass, uuid: string | undefined, fields: Record<string, XapiValue>): SimRow {
    const id = uuid ?? this.ids.uuid();
    if (this.byUuid.has(id)) throw new SimStateError(`uuid ${id} already exists`);
    const g = this.bump();
    const row: SimRow = { cls, ref: this.ids.ref(), uuid: id, fields: { uuid: id, ...fields }, created: g, modified: g };
    this.rows.get(cls)?.set(row.ref, row);
    this.byUuid.set(id, row);
    return row;
  }

  private touchRow(row: SimRow, g = this.bump()): void {
    row.modified = g;
  }

  private remove(row: SimRow): void {
    const g = this.bump();
    this.rows.get(row.cls)?.delete(row.ref);
    this.byUuid.delete(row.uuid);
    this.tombstones.push({ cls: row.cls, ref: row.ref, created: row.created, deleted: g });
  }

  // ------------------------------------------------------------------ lookups

  all(cls: SimClass): SimRow[] {
    return [...(this.rows.get(cls)?.values() ?? [])];
  }

  count(cls: SimClass): number {
    return this.rows.get(cls)?.size ?? 0;
  }

  byRef(cls: SimClass, ref: string): SimRow | undefined {
    return this.rows.get(cls)?.get(ref);
  }

  findByUuid(cls: SimClass, uuid: string): SimRow | undefined {
    const row = this.byUuid.get(uuid);
    return row?.cls === cls ? row : undefined;
  }

  deletedSince(generation: number): readonly Tombstone[] {
    return this.tombstones.filter((t) => t.deleted > generation);
  }

  /** Resolves a ref, a uuid or (network only) a bridge name; throws SimStateError. */
  resolve(cls: SimClass, id: string): SimRow {
    const row = this.byRef(cls, id) ?? this.findByUuid(cls, id) ?? (cls === 'network' ? this.all('network').find((n) => n.fields.bridge === id) : undefined);
    if (row === undefined) throw new SimStateError(`no ${cls} ${JSON.stringify(id)}`);
    return row;
  }

  /** The full record as `get_record` returns it (public stored fields plus derived ref sets). */
  record(row: SimRow): XapiStruct {
    const out: Record<string, XapiValue> = { ...row.fields };
    for (const f of INTERNAL_FIELDS[row.cls] ?? []) Reflect.deleteProperty(out, f);
    this.addDerived(row, out);
    return out;
  }

  /**
   * The row as a `get_all_records_where` filter sees it: stored columns, internal-only ones included.
   * The derived ref sets cost a scan of another class each, so only the `fields` a filter reads are
   * derived (XAPI stores them; the simulator must not dominate a benchmark at pool scale).
   */
  dbRow(row: SimRow, fields: ReadonlySet<string>): XapiStruct {
    const out: Record<string, XapiValue> = { ...row.fields };
    if (fields.has('VIFs') || fields.has('resident_VMs')) this.addDerived(row, out);
    return out;
  }

  private addDerived(row: SimRow, out: Record<string, XapiValue>): void {
    if (row.cls === 'VM') out.VIFs = this.all('VIF').filter((v) => v.fields.VM === row.ref).map((v) => v.ref);
    if (row.cls === 'network') out.VIFs = this.all('VIF').filter((v) => v.fields.network === row.ref).map((v) => v.ref);
    if (row.cls === 'host') out.resident_VMs = this.all('VM').filter((v) => v.fields.resident_on === row.ref).map((v) => v.ref);
  }

  // ------------------------------------------------------------------ mutations

  addPool(options: { uuid?: string; master: string; other_config?: StringMap }): Created {
    const row = this.insert('pool', options.uuid, {
      name_label: '',
      name_description: '',
      master: options.master,
      default_SR: NULL_REF,
      other_config: toStruct(options.other_config),
      vswitch_controller: '',
      ha_enabled: false,
      tags: [],
    });
    this.notify();
    return row;
  }

  addHost(options: AddHost): Created {
    const software = { ...DEFAULT_SOFTWARE_VERSION, hostname: options.hostname, ...options.software_version };
    const row = this.insert('host', options.uuid, {
      name_label: options.hostname,
      name_description: 'Default install',
      hostname: options.hostname,
      address: options.address ?? `192.0.2.${String(this.count('host') + 1)}`,
      software_version: toStruct(software),
      other_config: {},
      enabled: true,
      current_operations: {},
      API_version_major: 2,
      API_version_minor: 21,
      PIFs: [],
    });
    this.notify();
    return row;
  }

  addNetwork(options: AddNetwork): Created {
    const row = this.insert('network', options.uuid, {
      name_label: options.name_label ?? `Pool-wide network associated with ${options.bridge}`,
      name_description: '',
      bridge: options.bridge,
      MTU: options.MTU ?? 1500,
      managed: true,
      other_config: toStruct(options.other_config),
      PIFs: [],
      tags: [],
    });
    this.notify();
    return row;
  }

  addVm(options: AddVm): Created {
    const host = options.resident_on === undefined || options.resident_on === null ? undefined : this.resolve('host', options.resident_on);
    const running = host !== undefined;
    const row = this.insert('VM', options.uuid, {
      name_label: options.name_label ?? 'vm',
      name_description: '',
      power_state: options.power_state ?? (running ? 'Running' : 'Halted'),
      resident_on: host?.ref ?? NULL_REF,
      scheduled_to_be_resident_on: NULL_REF,
      affinity: host?.ref ?? NULL_REF,
      domid: options.domid ?? (running ? 1 : -1),
      is_control_domain: options.is_control_domain ?? false,
      is_a_template: false,
      is_a_snapshot: false,
      other_config: toStruct(options.other_config),
      memory_static_max: 1073741824,
      VCPUs_max: 1,
      tags: [],
    });
    if (host !== undefined) this.touchRow(host, row.created);
    this.notify();
    return row;
  }

  updateVm(id: string, patch: UpdateVm): void {
    const row = this.resolve('VM', id);
    const g = this.bump();
    const oldHost = row.fields.resident_on;
    if (patch.resident_on !== undefined) {
      const host = patch.resident_on === null ? undefined : this.resolve('host', patch.resident_on);
      row.fields.resident_on = host?.ref ?? NULL_REF;
      if (host !== undefined) this.touchRow(host, g);
      const old = typeof oldHost === 'string' ? this.byRef('host', oldHost) : undefined;
      if (old !== undefined) this.touchRow(old, g);
    }
    if (patch.domid !== undefined) row.fields.domid = patch.domid;
    if (patch.power_state !== undefined) row.fields.power_state = patch.power_state;
    if (patch.name_label !== undefined) row.fields.name_label = patch.name_label;
    this.touchRow(row, g);
    this.notify();
  }

  /**
   * The first half of `VM.start` (or of a migration to the host) as XAPI does it: it reserves memory
   * on the target (`VM.scheduled_to_be_resident_on`) and adds the operation to the host's
   * `current_operations` (`allocate_vm_to_host`, message_forwarding.ml). XAPI then has xenopsd build the
   * domain and plug its VIFs (the vif hotplug script adds the OVS ports), and only afterwards sets
   * `resident_on` (`Xapi_xenops.set_resident_on`): see `completeVmPlacement`. Returns the task ref
   * keying the host operation.
   */
  beginVmPlacement(vmId: string, hostId: string, operation: 'vm_start' | 'vm_resume' | 'vm_migrate' = 'vm_start'): string {
    const vm = this.resolve('VM', vmId);
    const host = this.resolve('host', hostId);
    const task = this.ids.ref();
    const g = this.bump();
    vm.fields.scheduled_to_be_resident_on = host.ref;
    defineMember(this.operations(host), task, operation);
    this.touchRow(vm, g);
    this.touchRow(host, g);
    this.notify();
    return task;
  }

  /**
   * The second half: `atomic_set_resident_on` (resident_on set, the reservation cleared, the VM
   * running with `domid`), then the host operation removed in its `finally`.
   */
  completeVmPlacement(vmId: string, task: string, domid: number): void {
    const vm = this.resolve('VM', vmId);
    const host = this.placementHost(vm);
    this.updateVm(vm.ref, { resident_on: host.ref, power_state: 'Running', domid });
    vm.fields.scheduled_to_be_resident_on = NULL_REF;
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
    delete this.operations(host)[task];
    this.touchRow(host);
    this.notify();
  }

  /** A placement that failed (the VM never became resident): the reservation and the operation go. */
  abortVmPlacement(vmId: string, task: string): void {
    const vm = this.resolve('VM', vmId);
    const host = this.placementHost(vm);
    const g = this.bump();
    vm.fields.scheduled_to_be_resident_on = NULL_REF;
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
    delete this.operations(host)[task];
    this.touchRow(vm, g);
    this.touchRow(host, g);
    this.notify();
  }

  /** The host a VM is being placed on (its reservation); throws when it is not being placed. */
  private placementHost(vm: SimRow): SimRow {
    const scheduled = vm.fields.scheduled_to_be_resident_on;
    const host = typeof scheduled === 'string' ? this.byRef('host', scheduled) : undefined;
    if (host === undefined) throw new SimStateError(`VM ${vm.uuid} is not being placed on a host`);
    return host;
  }

  private operations(host: SimRow): Record<string, XapiValue> {
    const ops = host.fields.current_operations;
    if (typeof ops !== 'object' || ops === null || Array.isArray(ops)) throw new SimStateError(`host ${host.uuid} has no current_operations`);
    return ops as Record<string, XapiValue>;
  }

  /** Destroys a VM and its VIFs (XAPI destroys a VM's VIFs with it). */
  removeVm(id: string): void {
    const row = this.resolve('VM', id);
    for (const vif of this.all('VIF').filter((v) => v.fields.VM === row.ref)) this.remove(vif);
    const host = typeof row.fields.resident_on === 'string' ? this.byRef('host', row.fields.resident_on) : undefined;
    this.remove(row);
    if (host !== undefined) this.touchRow(host);
    this.notify();
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
      locking_mode: 'network_default',
      ipv4_allowed: [],
      ipv6_allowed: [],
      qos_algorithm_type: '',
      qos_algorithm_params: {},
      MAC_autogenerated: options.MAC === undefined,
      status_code: 0,
      status_detail: '',
      runtime_properties: {},
      allowed_operations: [],
      current_operations: {},
    });
    // Adding a VIF changes the VIFs set of its VM and network: both are modified (reference §5.1).
    this.touchRow(vm, row.created);
    this.touchRow(network, row.created);
    this.notify();
    return row;
  }

  removeVif(id: string): void {
    const row = this.resolve('VIF', id);
    this.remove(row);
    const g = this.generation;
    const vm = typeof row.fields.VM === 'string' ? this.byRef('VM', row.fields.VM) : undefined;
    const net = typeof row.fields.network === 'string' ? this.byRef('network', row.fields.network) : undefined;
    if (vm !== undefined) this.touchRow(vm, g);
    if (net !== undefined) this.touchRow(net, g);
    this.notify();
  }

  removeNetwork(id: string): void {
    const row = this.resolve('network', id);
    if (this.all('VIF').some((v) => v.fields.network === row.ref)) throw new SimStateError(`network ${row.uuid} still has VIFs`);
    this.remove(row);
    this.notify();
  }

  private otherConfig(row: SimRow): Record<string, XapiValue> {
    const oc = row.fields.other_config;
    if (typeof oc !== 'object' || oc === null || Array.isArray(oc)) throw new SimStateError(`${row.cls} has no other_config`);
    return oc as Record<string, XapiValue>;
  }

  setOtherConfig(cls: SimClass, id: string, map: StringMap): void {
    const row = this.resolve(cls, id);
    row.fields.other_config = toStruct(map);
    this.touchRow(row);
    this.notify();
  }

  /** Returns false when the key already exists (the caller maps that to MAP_DUPLICATE_KEY). */
  addToOtherConfig(cls: SimClass, id: string, key: string, value: string): boolean {
    const row = this.resolve(cls, id);
    checkMapKey(key);
    const oc = this.otherConfig(row);
    if (Object.hasOwn(oc, key)) return false;
    defineMember(oc, key, value);
    this.touchRow(row);
    this.notify();
    return true;
  }

  /** Removing an absent key is a no-op, as in XAPI (no generation bump). */
  removeFromOtherConfig(cls: SimClass, id: string, key: string): void {
    const row = this.resolve(cls, id);
    const oc = this.otherConfig(row);
    if (!Object.hasOwn(oc, key)) return;
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
    delete oc[key];
    this.touchRow(row);
    this.notify();
  }

  setHostSoftwareVersion(id: string, map: StringMap): void {
    const row = this.resolve('host', id);
    row.fields.software_version = toStruct(map);
    this.touchRow(row);
    this.notify();
  }

  /** Marks a row modified (event.inject); returns the new generation. */
  touch(cls: SimClass, id: string): number {
    const row = this.resolve(cls, id);
    this.touchRow(row);
    this.notify();
    return this.gen;
  }
}
