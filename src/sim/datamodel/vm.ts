import { Double } from '../wire/values.js';
import { EMPTY_MAP, EMPTY_SET, EPOCH, NAMES, NULL, schema } from './schema.js';

/**
 * VM (xapi-project/xen-api ocaml/idl/datamodel_vm.ml:2627-3410, namespaces `memory`, `VCPUs`,
 * `actions`, `PV`, `HVM` from the same file): about 100 public fields. Values are those of a
 * running 1-vCPU, 1 GiB HVM guest on XCP-ng 8.3. `scheduled_to_be_resident_on` is public
 * (datamodel_vm.ml:2844-2857); `recommended_guidances` is internal-only and absent.
 */

/** `allowed_operations` of a running and of a halted guest (xapi_vm_lifecycle.ml decides them). */
export const VM_RUNNING_OPERATIONS = Object.freeze(['changing_dynamic_range', 'migrate_send', 'pool_migrate', 'changing_VCPUs_live', 'suspend', 'hard_reboot', 'hard_shutdown', 'clean_reboot', 'clean_shutdown', 'pause', 'checkpoint', 'snapshot', 'snapshot_with_quiesce', 'metadata_export']);
export const VM_HALTED_OPERATIONS = Object.freeze(['changing_NVRAM', 'changing_dynamic_range', 'changing_shadow_memory', 'changing_static_range', 'make_into_template', 'migrate_send', 'destroy', 'export', 'start_on', 'start', 'clone', 'copy', 'snapshot', 'metadata_export']);

const RECOMMENDATIONS =
  '<restrictions><restriction field="memory-static-max" max="1649267441664"/><restriction field="vcpus-max" max="32"/><restriction field="has-vendor-device" value="false"/><restriction field="allow-gpu-passthrough" value="1"/><restriction field="allow-vgpu" value="1"/><restriction field="allow-network-sriov" value="1"/><restriction field="supports-bios" value="yes"/><restriction field="supports-uefi" value="yes"/><restriction field="supports-secure-boot" value="yes"/><restriction max="255" property="number-of-vbds"/><restriction max="7" property="number-of-vifs"/></restrictions>';

export const VM_SCHEMA = schema([
  ['uuid', ''],
  ['allowed_operations', VM_HALTED_OPERATIONS],
  ['current_operations', EMPTY_MAP],
  ...NAMES,
  ['power_state', 'Halted'],
  ['user_version', 1],
  ['is_a_template', false],
  ['is_default_template', false],
  ['suspend_VDI', NULL],
  ['resident_on', NULL],
  ['scheduled_to_be_resident_on', NULL],
  ['affinity', NULL],
  ['ns:memory_overhead', 11534336],
  ['ns:memory_target', 1073741824],
  ['ns:memory_static_max', 1073741824],
  ['ns:memory_dynamic_max', 1073741824],
  ['ns:memory_dynamic_min', 1073741824],
  ['ns:memory_static_min', 1073741824],
  ['ns:VCPUs_params', EMPTY_MAP],
  ['ns:VCPUs_max', 1],
  ['ns:VCPUs_at_startup', 1],
  ['ns:actions_after_softreboot', 'soft_reboot'],
  ['ns:actions_after_shutdown', 'destroy'],
  ['ns:actions_after_reboot', 'restart'],
  ['ns:actions_after_crash', 'restart'],
  ['consoles', EMPTY_SET],
  ['VIFs', EMPTY_SET],
  ['VBDs', EMPTY_SET],
  ['VUSBs', EMPTY_SET],
  ['crash_dumps', EMPTY_SET],
  ['VTPMs', EMPTY_SET],
  ['ns:PV_bootloader', ''],
  ['ns:PV_kernel', ''],
  ['ns:PV_ramdisk', ''],
  ['ns:PV_args', ''],
  ['ns:PV_bootloader_args', ''],
  ['ns:PV_legacy_args', ''],
  ['ns:HVM_boot_policy', 'BIOS order'],
  ['ns:HVM_boot_params', { order: 'cdn', firmware: 'bios' }],
  ['ns:HVM_shadow_multiplier', new Double(1)],
  ['platform', { timeoffset: '0', 'device-model': 'qemu-upstream-compat', videoram: '8', hpet: 'true', secureboot: 'false', device_id: '0001', vga: 'std', nx: 'true', pae: 'true', apic: 'true', viridian: 'true', viridian_time_ref_count: 'true', viridian_reference_tsc: 'true', acpi: '1', 'cores-per-socket': '1' }],
  ['PCI_bus', ''],
  ['other_config', EMPTY_MAP],
  ['domid', -1],
  ['domarch', ''],
  ['last_boot_CPU_flags', EMPTY_MAP],
  ['is_control_domain', false],
  ['metrics', NULL],
  ['guest_metrics', NULL],
  ['last_booted_record', ''],
  ['recommendations', RECOMMENDATIONS],
  ['xenstore_data', { 'vm-data': '', 'vm-data/mmio-hole-size': '268435456' }],
  ['ha_always_run', false],
  ['ha_restart_priority', ''],
  ['is_a_snapshot', false],
  ['snapshot_of', NULL],
  ['snapshots', EMPTY_SET],
  ['snapshot_time', EPOCH],
  ['transportable_snapshot_id', ''],
  ['blobs', EMPTY_MAP],
  ['tags', EMPTY_SET],
  ['blocked_operations', EMPTY_MAP],
  ['snapshot_info', EMPTY_MAP],
  ['snapshot_metadata', ''],
  ['parent', NULL],
  ['children', EMPTY_SET],
  [
    'bios_strings',
    {
      'bios-vendor': 'Xen',
      'bios-version': '',
      'system-manufacturer': 'Xen',
      'system-product-name': 'HVM domU',
      'system-version': '',
      'system-serial-number': '',
      'baseboard-manufacturer': '',
      'baseboard-product-name': '',
      'baseboard-version': '',
      'baseboard-serial-number': '',
      'baseboard-asset-tag': '',
      'baseboard-location-in-chassis': '',
      'enclosure-asset-tag': '',
      'hp-rombios': '',
      'oem-1': 'Xen',
      'oem-2': 'MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d',
    },
  ],
  ['protection_policy', NULL],
  ['is_snapshot_from_vmpp', false],
  ['snapshot_schedule', NULL],
  ['is_vmss_snapshot', false],
  ['appliance', NULL],
  ['start_delay', 0],
  ['shutdown_delay', 0],
  ['order', 0],
  ['VGPUs', EMPTY_SET],
  ['attached_PCIs', EMPTY_SET],
  ['suspend_SR', NULL],
  ['version', 0],
  ['generation_id', '0:0'],
  ['hardware_platform_version', 2],
  ['has_vendor_device', false],
  ['requires_reboot', false],
  ['reference_label', ''],
  ['domain_type', 'hvm'],
  ['NVRAM', EMPTY_MAP],
  ['pending_guidances', EMPTY_SET],
  ['pending_guidances_recommended', EMPTY_SET],
  ['pending_guidances_full', EMPTY_SET],
  ['groups', EMPTY_SET],
]);

/**
 * Fields a running guest holds instead of the defaults (operations, CPU flags, domain arch).
 * `last_booted_record` stays '': xapi now writes it only when a VM suspends (xapi_xenops.ml:2152-2160).
 */
export const VM_RUNNING_FIELDS = Object.freeze({
  allowed_operations: VM_RUNNING_OPERATIONS,
  domarch: 'x64',
  last_boot_CPU_flags: Object.freeze({ vendor: 'GenuineIntel', features: '1fcbfbff-f7fa3223-2d93fbff-00000423-00000001-000007ab-00000000-00000000-00001000-0c000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000' }),
});
