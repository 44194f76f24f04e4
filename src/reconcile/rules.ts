import { COPIED_TAP_KEYS } from './changeset.js';
import type {
  MapColumn,
  OwnedTable,
  ReconcileWarning,
  ReconcileWarningCode,
  ScalarColumn,
  UnresolvedRow,
  XapiDependency,
} from './changeset.js';
import { isSafeId, quoteForLog } from './validate.js';
import type {
  BridgeRow,
  InterfaceRow,
  OpenVSwitchRow,
  OvsdbView,
  StringMap,
  SystemFacts,
  Uuid,
  XapiHost,
  XapiObjectState,
  XapiView,
} from './views.js';

/**
 * The rules of DESIGN §2 as pure functions from one row (plus the views) to a `RowIntent`: for each
 * owned field, the value the database must hold, `null` when the key must be absent (or the optional
 * scalar empty), or no entry at all when the field is to be left alone.
 *
 * How the four XAPI states apply, field by field (each field depends on at most one object at a time,
 * and fields are decided independently: a pending VM does not hold back an iface-id whose VIF is known):
 *
 * | field | depends on | known | absent | pending | unknown |
 * |---|---|---|---|---|---|
 * | Interface `iface-id` (vif/tap rows) | VIF of xs-vif-uuid | override or uuid | uuid | leave | keep existing, else uuid |
 * | Interface `vm-id` (vif/tap rows) | VM of xs-vm-uuid | override or uuid | uuid | leave | keep existing, else uuid |
 * | Interface copied keys, `iface-status`; ids on other rows | nothing | | | | |
 * | Bridge `bridge-id` | network of the bridge | override, else default(N) | default | leave | keep existing, else default |
 * | Bridge `fail_mode` | network, then pool when N lacks the key | N's, else pool's, else standalone | not touched | leave | see below |
 * | Bridge `disable-in-band` | network | true/false/removed | not touched | leave | leave |
 * | Open_vSwitch ids, `system_type`, `system_version` | host | host's, else inventory | inventory | leave | keep existing, else inventory |
 *
 * Decisions where DESIGN §2 is silent (what an operator would expect):
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
 * - Pairing: `vifD.N` ↔ `tapD.N` where D and N are decimal numbers; the same pattern decides which rows
 *   are "vif/tap rows" for the `nicira-*` overrides (the old daemon's `startswith('vif'|'tap')`, narrowed
 *   to names the hotplug scripts actually create).
 */
export interface RowIntent {
  readonly table: OwnedTable;
  readonly uuid: Uuid;
  readonly name: string | undefined;
  /** The row's current maps and scalars, which the diff compares against. */
  readonly current: {
    readonly maps: Partial<Record<MapColumn, StringMap>>;
    readonly scalars: Partial<Record<ScalarColumn, string | undefined>>;
  };
  readonly maps: Partial<Record<MapColumn, Map<string, string | null>>>;
  readonly scalars: Partial<Record<ScalarColumn, string | null>>;
}

/** Warnings and unresolved dependencies found while computing intents (the pure core never logs). */
export class Findings {
  readonly warnings: ReconcileWarning[] = [];
  readonly pending: UnresolvedRow[] = [];
  readonly unknown: UnresolvedRow[] = [];

  warn(row: RowRef, code: ReconcileWarningCode, message: string): void {
    this.warnings.push({ code, table: row.table, uuid: row.uuid, name: row.name, message });
  }

  unresolved(row: RowRef, state: 'pending' | 'unknown', dependency: XapiDependency): void {
    const list = state === 'pending' ? this.pending : this.unknown;
    const key = dependencyKey(dependency);
    // One entry per (row, dependency), although several fields of a row may consult the same object.
    // Rows are evaluated one at a time, so a duplicate can only be among the row's own trailing entries.
    for (let i = list.length - 1; i >= 0; i--) {
      const u = list[i];
      if (u === undefined || u.uuid !== row.uuid || u.table !== row.table) break;
      if (dependencyKey(u.dependency) === key) return;
    }
    list.push({ table: row.table, uuid: row.uuid, name: row.name, dependency });
  }
}

interface RowRef {
  readonly table: OwnedTable;
  readonly uuid: Uuid;
  readonly name: string | undefined;
}

/** A stable text form of a dependency, for sorting and de-duplication. */
export function dependencyKey(dep: XapiDependency): string {
  switch (dep.kind) {
    case 'vif':
    case 'vm':
      return `${dep.kind}:${dep.uuid}`;
    case 'network':
      return `network:${dep.bridge}`;
    case 'pool':
    case 'host':
      return dep.kind;
  }
}

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

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** The Interface rules of DESIGN §2 for one row. */
export function interfaceIntent(row: InterfaceRow, ovs: OvsdbView, xapi: XapiView, findings: Findings): RowIntent {
  const ref: RowRef = { table: 'Interface', uuid: row.uuid, name: row.name };
  const { role, partner } = interfaceRole(row.name);
  const partnerRow = partner === undefined ? undefined : interfaceNamed(ovs, partner);
  const ext = new Map<string, string | null>();

  // The tap takes the hotplug facts from its vif; ids below are derived from the facts after the copy.
  let facts: StringMap = row.externalIds;
  if (role === 'tap' && partnerRow !== undefined) {
    facts = partnerRow.externalIds;
    for (const key of COPIED_TAP_KEYS) ext.set(key, partnerRow.externalIds.get(key) ?? null);
  }

  const pairRow = role !== 'other';
  const vifUuid = nonEmpty(facts.get('xs-vif-uuid'));
  const vmUuid = nonEmpty(facts.get('xs-vm-uuid'));
  derivedId(ext, row.externalIds, 'iface-id', vifUuid, pairRow, findings, ref, 'nicira-iface-id', (u) => xapi.vif(u), 'vif');
  derivedId(ext, row.externalIds, 'vm-id', vmUuid, pairRow, findings, ref, 'nicira-vm-id', (u) => xapi.vm(u), 'vm');

  let status: string | null = null;
  if (role === 'vif') status = partnerRow === undefined ? 'active' : 'inactive';
  else if (role === 'tap' && partnerRow !== undefined) status = 'active';
  ext.set('iface-status', status);

  return {
    table: 'Interface',
    uuid: row.uuid,
    name: row.name,
    current: { maps: { external_ids: row.externalIds }, scalars: {} },
    maps: { external_ids: ext },
    scalars: {},
  };
}

/** `iface-id` / `vm-id`: the object's `nicira-*` override on vif/tap rows, else its uuid (DESIGN §2). */
function derivedId(
  ext: Map<string, string | null>,
  current: StringMap,
  key: string,
  objectUuid: string | undefined,
  consultXapi: boolean,
  findings: Findings,
  ref: RowRef,
  overrideKey: string,
  lookup: (uuid: Uuid) => XapiObjectState<{ readonly otherConfig: StringMap }>,
  kind: 'vif' | 'vm',
): void {
  if (objectUuid === undefined) {
    ext.set(key, null);
    return;
  }
  if (!consultXapi) {
    ext.set(key, objectUuid);
    return;
  }
  const state = lookup(objectUuid);
  switch (state.state) {
    case 'known': {
      const override = nonEmpty(state.value.otherConfig.get(overrideKey));
      if (override !== undefined && !isSafeId(override)) {
        findings.warn(
          ref,
          'OVERRIDE_INVALID',
          `${kind.toUpperCase()} ${quoteForLog(objectUuid)} other_config:${overrideKey} ${quoteForLog(override)} is not a safe id; using the uuid`,
        );
        ext.set(key, objectUuid);
      } else {
        ext.set(key, override ?? objectUuid);
      }
      return;
    }
    case 'absent':
      ext.set(key, objectUuid);
      return;
    case 'pending':
      findings.unresolved(ref, 'pending', { kind, uuid: objectUuid });
      return;
    case 'unknown':
      findings.unresolved(ref, 'unknown', { kind, uuid: objectUuid });
      if (current.get(key) === undefined) ext.set(key, objectUuid);
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

/** The Bridge rules of DESIGN §2 for one row. */
export function bridgeIntent(row: BridgeRow, xapi: XapiView, findings: Findings): RowIntent {
  const ref: RowRef = { table: 'Bridge', uuid: row.uuid, name: row.name };
  const ext = new Map<string, string | null>();
  const other = new Map<string, string | null>();
  const scalars: Partial<Record<ScalarColumn, string | null>> = {};
  const network = xapi.networkByBridge(row.name);
  const uuids = networkUuidsOf(row);

  // The default bridge-id from xs-network-uuids; `undefined` when several are listed and N cannot settle it.
  const defaultBridgeId = (networkUuid: string | undefined): string | null | undefined => {
    if (uuids.length === 0) return null;
    if (uuids.length === 1) return uuids[0] ?? null;
    if (networkUuid !== undefined && uuids.includes(networkUuid)) return networkUuid;
    return undefined;
  };
  const ambiguous = (networkUuid: string | undefined): void => {
    const which = networkUuid === undefined ? 'no XAPI network has this bridge' : `network ${quoteForLog(networkUuid)} is not among them`;
    findings.warn(
      ref,
      'BRIDGE_ID_AMBIGUOUS',
      `bridge ${quoteForLog(row.name)} xs-network-uuids lists ${uuids.length} networks and ${which}; bridge-id removed`,
    );
    ext.set('bridge-id', null);
  };

  switch (network.state) {
    case 'known': {
      const n = network.value;
      const override = nonEmpty(n.otherConfig.get('nicira-bridge-id'));
      if (override !== undefined && isSafeId(override)) {
        ext.set('bridge-id', override);
      } else {
        if (override !== undefined) {
          findings.warn(
            ref,
            'OVERRIDE_INVALID',
            `network ${quoteForLog(n.uuid)} other_config:nicira-bridge-id ${quoteForLog(override)} is not a safe id; ignored`,
          );
        }
        const id = defaultBridgeId(n.uuid);
        if (id === undefined) ambiguous(n.uuid);
        else ext.set('bridge-id', id);
      }
      failMode(row, ref, n.otherConfig, xapi, findings, scalars);
      disableInBand(row, ref, n.otherConfig, findings, other);
      break;
    }
    case 'absent': {
      // "only when N exists": fail_mode and other_config are not touched on bridges XAPI does not know.
      const id = defaultBridgeId(undefined);
      if (id === undefined) ambiguous(undefined);
      else ext.set('bridge-id', id);
      break;
    }
    case 'pending':
      findings.unresolved(ref, 'pending', { kind: 'network', bridge: row.name });
      break;
    case 'unknown': {
      findings.unresolved(ref, 'unknown', { kind: 'network', bridge: row.name });
      if (row.externalIds.get('bridge-id') === undefined) {
        const id = defaultBridgeId(undefined);
        if (typeof id === 'string') ext.set('bridge-id', id);
      }
      break;
    }
  }

  return {
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

// ---------------------------------------------------------------------------------------------------
// Open_vSwitch

/** The Open_vSwitch rules of DESIGN §2 for the root row. */
export function rootIntent(row: OpenVSwitchRow, xapi: XapiView, facts: SystemFacts, findings: Findings): RowIntent {
  const ref: RowRef = { table: 'Open_vSwitch', uuid: row.uuid, name: undefined };
  const ext = new Map<string, string | null>();
  const other = new Map<string, string | null>();
  const scalars: Partial<Record<ScalarColumn, string | null>> = {};
  const host = xapi.host();
  const inv = facts.inventory;

  const safe = (value: string | undefined, what: string): string | undefined => {
    const v = nonEmpty(value);
    if (v === undefined) return undefined;
    if (isSafeId(v)) return v;
    findings.warn(ref, 'SYSTEM_FACT_INVALID', `${what} ${quoteForLog(v)} is not a safe value; ignored`);
    return undefined;
  };

  // system-id and xs-system-uuid: config > XAPI host > inventory.
  const configured = safe(facts.systemId, 'config systemId');
  if (configured !== undefined) {
    ext.set('system-id', configured);
    ext.set('xs-system-uuid', configured);
  } else {
    hostDerived(host, ref, findings, {
      fromHost: (h) => safe(h.uuid, 'XAPI host uuid') ?? safe(inv.installationUuid, 'inventory INSTALLATION_UUID'),
      fromInventory: () => safe(inv.installationUuid, 'inventory INSTALLATION_UUID'),
      apply: (value, keepExisting) => {
        for (const key of ['system-id', 'xs-system-uuid']) {
          if (keepExisting && row.externalIds.get(key) !== undefined) continue;
          ext.set(key, value);
        }
      },
    });
  }

  hostDerived(host, ref, findings, {
    fromHost: (h) =>
      safe(h.softwareVersion.get('product_brand'), 'XAPI host product_brand') ??
      safe(inv.productBrand, 'inventory PRODUCT_BRAND'),
    fromInventory: () => safe(inv.productBrand, 'inventory PRODUCT_BRAND'),
    apply: (value, keepExisting) => {
      if (!(keepExisting && row.systemType !== undefined)) scalars.system_type = value;
    },
  });

  const version = (v: string | undefined, b: string | undefined, what: string): string | undefined => {
    const pv = nonEmpty(v);
    const bn = nonEmpty(b);
    return pv === undefined || bn === undefined ? undefined : safe(`${pv}-${bn}`, what);
  };
  hostDerived(host, ref, findings, {
    fromHost: (h) =>
      version(h.softwareVersion.get('product_version'), h.softwareVersion.get('build_number'), 'XAPI host version') ??
      version(inv.productVersion, inv.buildNumber, 'inventory version'),
    fromInventory: () => version(inv.productVersion, inv.buildNumber, 'inventory version'),
    apply: (value, keepExisting) => {
      if (!(keepExisting && row.systemVersion !== undefined)) scalars.system_version = value;
    },
  });

  if (facts.enableStatistics) other.set('enable-statistics', 'true');

  return {
    table: 'Open_vSwitch',
    uuid: row.uuid,
    name: undefined,
    current: {
      maps: { external_ids: row.externalIds, other_config: row.otherConfig },
      scalars: { system_type: row.systemType, system_version: row.systemVersion },
    },
    maps: { external_ids: ext, other_config: other },
    scalars,
  };
}

/** One host-derived field: known → host's (else inventory), absent → inventory, pending → leave, unknown → keep or inventory. */
function hostDerived(
  host: XapiObjectState<XapiHost>,
  ref: RowRef,
  findings: Findings,
  field: {
    fromHost: (h: XapiHost) => string | undefined;
    fromInventory: () => string | undefined;
    /** Sets the field to `value`; with `keepExisting`, only where the row has no value yet. */
    apply: (value: string, keepExisting: boolean) => void;
  },
): void {
  switch (host.state) {
    case 'known': {
      const v = field.fromHost(host.value);
      if (v !== undefined) field.apply(v, false);
      return;
    }
    case 'absent': {
      const v = field.fromInventory();
      if (v !== undefined) field.apply(v, false);
      return;
    }
    case 'pending':
      findings.unresolved(ref, 'pending', { kind: 'host' });
      return;
    case 'unknown': {
      findings.unresolved(ref, 'unknown', { kind: 'host' });
      const v = field.fromInventory();
      if (v !== undefined) field.apply(v, true);
      return;
    }
  }
}
