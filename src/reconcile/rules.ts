import { COPIED_TAP_KEYS } from './changeset.js';
import type { ManagedKey, ScalarColumn } from './changeset.js';
import { manages, nonEmpty, safeOverride } from './intent.js';
import type { Findings, RowIntent, RowRef } from './intent.js';
import { quoteForLog } from './validate.js';
import type { BridgeRow, InterfaceRow, OvsdbView, StringMap, SystemFacts, XapiView } from './views.js';

export { dependencyKey, Findings, manages } from './intent.js';
export type { RowIntent } from './intent.js';
export { rootIntent } from './root-rules.js';

/*
 * The rules of docs/design.md §2 as pure functions from one row (plus the views and the config's facts) to a
 * `RowIntent` (intent.ts); the Open_vSwitch row's are in root-rules.ts.
 *
 * How the four XAPI states apply, field by field (each field depends on at most one object at a time,
 * and fields are decided independently: a pending VM does not hold back an iface-id whose VIF is known):
 *
 * | field | depends on | known | absent | pending | unknown |
 * |---|---|---|---|---|---|
 * | Interface `iface-id` (vif/tap rows) | VIF of xs-vif-uuid | override or uuid | uuid | leave | keep existing, else uuid |
 * | Interface `vm-id` (vif/tap rows) | VM of xs-vm-uuid | override or uuid | uuid | leave | keep existing, else uuid |
 * | Interface `neutron-port-uuid` (vif rows only) | VIF of xs-vif-uuid | `neutron-port-uuid`, else `nicira-iface-id`, else removed | removed | leave | keep existing (the default is no key) |
 * | Interface copied keys, `iface-status`; ids on other rows | nothing | | | | |
 * | Bridge `bridge-id` | network of the bridge | override, else default(N) | default | leave | keep existing, else default |
 * | Bridge `fail_mode` | network, then pool when N lacks the key | N's, else pool's, else standalone | not touched | leave | see below |
 * | Bridge `disable-in-band` | network | true/false/removed | not touched | leave | leave |
 * | Open_vSwitch ids, `system_type`, `system_version` | host | host's, else inventory | inventory | leave | keep existing, else inventory |
 *
 * Decisions beyond the tables of docs/design.md §2 (what an operator would expect):
 * - `fail_mode` / `disable-in-band` with the network `unknown`: both are owned only when N exists and an
 *   unreachable XAPI cannot say whether it does, so they are left alone (an empty `fail_mode` already
 *   behaves as standalone in OVS, so nothing is blocked). With N known but lacking the key and the pool
 *   `unknown`: an existing `fail_mode` is kept, an empty one becomes `standalone` (the default).
 * - `bridge-id` with N `unknown` and several xs-network-uuids: no default can be chosen without N, so a
 *   missing key stays missing until XAPI answers (no warning: nothing is wrong yet).
 * - An empty string in XAPI other_config or in the hotplug facts counts as absent (the old daemon's
 *   `if not value` tests).
 * - Host facts: when the host record is known but lacks `product_brand` / `product_version` /
 *   `build_number` (XAPI drops empty ones), the inventory value is used; when no source has a value
 *   the column is left alone, never emptied.
 * - `neutron-port-uuid` is owned on vif rows only, as docs/design.md §2.3 scopes it: a tap or any other row keeps
 *   whatever it holds. No xs-vif-uuid → removed, like `iface-id`.
 * - Config `managedKeys` / `neutronPortUuid` (see `manages`): a field the daemon does not manage is not
 *   computed at all, so it gets no intent, raises no warning and makes no row pending or unknown; a row
 *   whose managed fields need no XAPI object asks XAPI nothing.
 * - An invalid override raises one warning per row, however many managed keys read it.
 * - Pairing: `vifD.N` ↔ `tapD.N` where D and N are decimal numbers; the same pattern decides which rows
 *   are "vif/tap rows" for the `nicira-*` overrides (the old daemon's `startswith('vif'|'tap')`, narrowed
 *   to names the hotplug scripts actually create).
 */

// ---------------------------------------------------------------------------------------------------
// Interface

const PAIR_NAME = /^(vif|tap)(\d+\.\d+)$/;

export type InterfaceRole = 'vif' | 'tap' | 'other';

/** The row's role and, for vif/tap rows, the name of its partner (`vif1.0` ↔ `tap1.0`). */
export function interfaceRole(name: string): { readonly role: InterfaceRole; readonly partner: string | undefined } {
  const m = PAIR_NAME.exec(name);
  if (!m) return { role: 'other', partner: undefined };
  const role = m[1] === 'vif' ? 'vif' : 'tap';
  return { role, partner: `${role === 'vif' ? 'tap' : 'vif'}${m[2] ?? ''}` };
}

/** The row named `name`, when the view holds it. */
export function interfaceNamed(ovs: OvsdbView, name: string): InterfaceRow | undefined {
  const uuid = ovs.interfaceByName.get(name);
  return uuid === undefined ? undefined : ovs.interfaces.get(uuid);
}

/** The Interface rules of docs/design.md §2.3 for one row. */
export function interfaceIntent(row: InterfaceRow, ovs: OvsdbView, xapi: XapiView, facts: SystemFacts, findings: Findings): RowIntent {
  const ref: RowRef = { table: 'Interface', uuid: row.uuid, name: row.name };
  const { role, partner } = interfaceRole(row.name);
  const partnerRow = partner === undefined ? undefined : interfaceNamed(ovs, partner);
  const ext = new Map<string, string | null>();

  // The tap takes the hotplug facts from its vif; ids below are derived from the facts after the copy.
  let hotplug: StringMap = row.externalIds;
  if (role === 'tap' && partnerRow !== undefined) {
    hotplug = partnerRow.externalIds;
    for (const key of COPIED_TAP_KEYS) if (manages(facts, key)) ext.set(key, partnerRow.externalIds.get(key) ?? null);
  }

  const pairRow = role !== 'other';
  const vifUuid = nonEmpty(hotplug.get('xs-vif-uuid'));
  const vmUuid = nonEmpty(hotplug.get('xs-vm-uuid'));
  const derive = (spec: DerivedKey, objectUuid: string | undefined): void => {
    if (manages(facts, spec.key)) derivedKey(spec, objectUuid, pairRow, row.externalIds, xapi, ext, findings, ref);
  };
  derive(IFACE_ID, vifUuid);
  derive(VM_ID, vmUuid);
  if (role === 'vif') derive(NEUTRON_PORT_UUID, vifUuid);

  if (manages(facts, 'iface-status')) {
    let status: string | null = null;
    if (role === 'vif') status = partnerRow === undefined ? 'active' : 'inactive';
    else if (role === 'tap' && partnerRow !== undefined) status = 'active';
    ext.set('iface-status', status);
  }

  return {
    table: 'Interface',
    uuid: row.uuid,
    name: row.name,
    current: { maps: { external_ids: row.externalIds }, scalars: {} },
    maps: { external_ids: ext },
    scalars: {},
  };
}

/** How one Interface key follows an XAPI object's other_config (docs/design.md §2.3). */
interface DerivedKey {
  readonly key: ManagedKey;
  readonly kind: 'vif' | 'vm';
  /** The object's other_config keys, in order: the first non-empty safe one is the value. */
  readonly overrides: readonly string[];
  /** The value when no override applies (or on rows that do not consult XAPI): the object's uuid, or no key. */
  readonly fallback: 'uuid' | 'none';
}

const IFACE_ID: DerivedKey = { key: 'iface-id', kind: 'vif', overrides: ['nicira-iface-id'], fallback: 'uuid' };
const VM_ID: DerivedKey = { key: 'vm-id', kind: 'vm', overrides: ['nicira-vm-id'], fallback: 'uuid' };
/** What the `ovs-xapi-sync` shipped by XenServer 8 / XCP-ng 8.3 writes on vif rows (issue 13 §5). */
const NEUTRON_PORT_UUID: DerivedKey = {
  key: 'neutron-port-uuid',
  kind: 'vif',
  overrides: ['neutron-port-uuid', 'nicira-iface-id'],
  fallback: 'none',
};

/**
 * One derived key: on vif/tap rows (`consultXapi`) the object's first valid override, else the
 * fallback; on other rows the fallback; no object uuid → removed. Pending leaves the key alone;
 * unknown keeps an existing value and gives a missing one the fallback.
 */
function derivedKey(
  spec: DerivedKey,
  objectUuid: string | undefined,
  consultXapi: boolean,
  current: StringMap,
  xapi: XapiView,
  ext: Map<string, string | null>,
  findings: Findings,
  ref: RowRef,
): void {
  if (objectUuid === undefined) {
    ext.set(spec.key, null);
    return;
  }
  const fallback = spec.fallback === 'uuid' ? objectUuid : null;
  if (!consultXapi) {
    ext.set(spec.key, fallback);
    return;
  }
  const state = spec.kind === 'vif' ? xapi.vif(objectUuid) : xapi.vm(objectUuid);
  switch (state.state) {
    case 'known': {
      const owner = `${spec.kind.toUpperCase()} ${quoteForLog(objectUuid)}`;
      let value: string | undefined;
      for (const key of spec.overrides) {
        value = safeOverride(state.value.otherConfig, key, owner, ref, findings);
        if (value !== undefined) break;
      }
      ext.set(spec.key, value ?? fallback);
      return;
    }
    case 'absent':
      ext.set(spec.key, fallback);
      return;
    case 'pending':
      findings.unresolved(ref, 'pending', { kind: spec.kind, uuid: objectUuid });
      return;
    case 'unknown':
      findings.unresolved(ref, 'unknown', { kind: spec.kind, uuid: objectUuid });
      if (current.get(spec.key) === undefined) ext.set(spec.key, fallback);
      return;
  }
}

// ---------------------------------------------------------------------------------------------------
// Bridge

const FAIL_MODES: ReadonlySet<string> = new Set(['standalone', 'secure']);

/** `xs-network-uuids` as written by xcp-networkd: `;`-separated uuids (empty items ignored). */
export function networkUuidsOf(bridge: BridgeRow): readonly string[] {
  const raw = bridge.externalIds.get('xs-network-uuids');
  if (raw === undefined) return [];
  return raw
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The Bridge rules of docs/design.md §2.2 for one row. */
export function bridgeIntent(row: BridgeRow, xapi: XapiView, facts: SystemFacts, findings: Findings): RowIntent {
  const ref: RowRef = { table: 'Bridge', uuid: row.uuid, name: row.name };
  const ext = new Map<string, string | null>();
  const other = new Map<string, string | null>();
  const scalars: Partial<Record<ScalarColumn, string | null>> = {};
  const intent: RowIntent = {
    table: 'Bridge',
    uuid: row.uuid,
    name: row.name,
    current: {
      maps: { external_ids: row.externalIds, other_config: row.otherConfig },
      scalars: { fail_mode: row.failMode },
    },
    maps: { external_ids: ext, other_config: other },
    scalars,
  };
  const bridgeId = manages(facts, 'bridge-id');
  const failModeManaged = manages(facts, 'fail_mode');
  const inBandManaged = manages(facts, 'disable-in-band');
  if (!bridgeId && !failModeManaged && !inBandManaged) return intent;

  const network = xapi.networkByBridge(row.name);
  const uuids = networkUuidsOf(row);

  // The default bridge-id from xs-network-uuids; with several listed, N's uuid settles it or none does.
  const setDefaultBridgeId = (networkUuid: string | undefined): void => {
    if (uuids.length <= 1) {
      ext.set('bridge-id', uuids[0] ?? null);
    } else if (networkUuid !== undefined && uuids.includes(networkUuid)) {
      ext.set('bridge-id', networkUuid);
    } else {
      const which = networkUuid === undefined ? 'no XAPI network has this bridge' : `network ${quoteForLog(networkUuid)} is not among them`;
      findings.warn(
        ref,
        'BRIDGE_ID_AMBIGUOUS',
        `bridge ${quoteForLog(row.name)} xs-network-uuids lists ${uuids.length} networks and ${which}; bridge-id removed`,
      );
      ext.set('bridge-id', null);
    }
  };

  switch (network.state) {
    case 'known': {
      const n = network.value;
      if (bridgeId) {
        const override = safeOverride(n.otherConfig, 'nicira-bridge-id', `network ${quoteForLog(n.uuid)}`, ref, findings);
        if (override !== undefined) ext.set('bridge-id', override);
        else setDefaultBridgeId(n.uuid);
      }
      if (failModeManaged) failMode(row, ref, n.otherConfig, xapi, findings, scalars);
      if (inBandManaged) disableInBand(row, ref, n.otherConfig, findings, other);
      break;
    }
    case 'absent':
      // "only when N exists": fail_mode and other_config are not touched on bridges XAPI does not know.
      if (bridgeId) setDefaultBridgeId(undefined);
      break;
    case 'pending':
      findings.unresolved(ref, 'pending', { kind: 'network', bridge: row.name });
      break;
    case 'unknown':
      findings.unresolved(ref, 'unknown', { kind: 'network', bridge: row.name });
      // A missing bridge-id gets the default only when N is not needed to choose it (no warning yet).
      if (bridgeId && row.externalIds.get('bridge-id') === undefined && uuids.length === 1) ext.set('bridge-id', uuids[0] ?? null);
      break;
  }
  return intent;
}

function validFailMode(value: string, source: string, ref: RowRef, findings: Findings): string {
  if (FAIL_MODES.has(value)) return value;
  findings.warn(
    ref,
    'FAIL_MODE_INVALID',
    `${source} other_config:vswitch-controller-fail-mode ${quoteForLog(value)} is not standalone or secure; using standalone`,
  );
  return 'standalone';
}

/** `fail_mode`: the network's `vswitch-controller-fail-mode`, else the pool's, else standalone. */
function failMode(
  row: BridgeRow,
  ref: RowRef,
  networkConfig: StringMap,
  xapi: XapiView,
  findings: Findings,
  scalars: Partial<Record<ScalarColumn, string | null>>,
): void {
  const own = nonEmpty(networkConfig.get('vswitch-controller-fail-mode'));
  if (own !== undefined) {
    scalars.fail_mode = validFailMode(own, 'network', ref, findings);
    return;
  }
  const pool = xapi.pool();
  switch (pool.state) {
    case 'known': {
      const value = nonEmpty(pool.value.otherConfig.get('vswitch-controller-fail-mode'));
      scalars.fail_mode = value === undefined ? 'standalone' : validFailMode(value, 'pool', ref, findings);
      return;
    }
    case 'absent':
      scalars.fail_mode = 'standalone';
      return;
    case 'pending':
      findings.unresolved(ref, 'pending', { kind: 'pool' });
      return;
    case 'unknown':
      findings.unresolved(ref, 'unknown', { kind: 'pool' });
      if (row.failMode === undefined) scalars.fail_mode = 'standalone';
      return;
  }
}

/** `other_config:disable-in-band` from the network's `vswitch-disable-in-band`. */
function disableInBand(
  row: BridgeRow,
  ref: RowRef,
  networkConfig: StringMap,
  findings: Findings,
  other: Map<string, string | null>,
): void {
  const value = nonEmpty(networkConfig.get('vswitch-disable-in-band'));
  if (value === undefined) other.set('disable-in-band', null);
  else if (value === 'true' || value === 'false') other.set('disable-in-band', value);
  else {
    findings.warn(
      ref,
      'DISABLE_IN_BAND_INVALID',
      `network for bridge ${quoteForLog(row.name)} other_config:vswitch-disable-in-band ${quoteForLog(value)} is not true or false; left as is`,
    );
  }
}
