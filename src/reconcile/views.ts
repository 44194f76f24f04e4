import type { ManagedKey } from './changeset.js';

/**
 * The reconciler's inputs: plain readonly data describing what OVSDB holds, what XAPI says and what the
 * host's configuration and inventory say. Nothing here performs I/O; the composition root's adapters
 * answer these interfaces from the OVSDB replica and the XAPI cache (docs/ARCHITECTURE.md §4: the reconciler imports
 * nothing from ovsdb/ or xapi/).
 *
 * Contracts shared by every type below:
 * - Rows and records are immutable snapshots. An adapter replaces a row object when the row changes; it
 *   never mutates one the reconciler may be holding during a pass.
 * - Maps are `ReadonlyMap<string, string>` (never plain objects, so a hostile key such as `__proto__`
 *   is just a key). An absent column value is an empty map.
 * - A view is consistent for the duration of one synchronous pass (the reconciler never awaits).
 */

/** An OVSDB row `_uuid` (RFC 7047 §5.1 `<uuid>`), or an XAPI object uuid; both are canonical text. */
export type Uuid = string;

export type StringMap = ReadonlyMap<string, string>;

/** The single `Open_vSwitch` row (the root of the schema). */
export interface OpenVSwitchRow {
  readonly uuid: Uuid;
  readonly externalIds: StringMap;
  readonly otherConfig: StringMap;
  /** `system_type` (an optional string column: `undefined` when the set is empty). */
  readonly systemType: string | undefined;
  /** `system_version` (optional string column). */
  readonly systemVersion: string | undefined;
}

export interface BridgeRow {
  readonly uuid: Uuid;
  readonly name: string;
  readonly externalIds: StringMap;
  readonly otherConfig: StringMap;
  /** `fail_mode`: `standalone`, `secure`, or `undefined` when the optional column is empty. */
  readonly failMode: string | undefined;
}

export interface InterfaceRow {
  readonly uuid: Uuid;
  /** Immutable in vswitch.ovsschema (`Interface.name` is not `mutable`), unique (schema index). */
  readonly name: string;
  readonly externalIds: StringMap;
}

/**
 * What ovsdb-server holds, as the replica saw it after the initial monitor reply was applied
 * (docs/design.md §4.6: never a half-built replica).
 *
 * `interfaceByName` must list exactly the rows of `interfaces` (name → row uuid); it exists so that
 * the `vifD.N` ↔ `tapD.N` pairing is a lookup, not a walk.
 */
export interface OvsdbView {
  /** `undefined` only in an empty database (before `ovs-vsctl init`); the root rules are then skipped. */
  readonly root: OpenVSwitchRow | undefined;
  readonly bridges: ReadonlyMap<Uuid, BridgeRow>;
  readonly interfaces: ReadonlyMap<Uuid, InterfaceRow>;
  readonly interfaceByName: ReadonlyMap<string, Uuid>;
}

/**
 * The four outcomes of asking XAPI about one object (docs/design.md §3):
 * - `known`: XAPI answered with the record; use its `other_config`.
 * - `absent`: XAPI said the object does not exist (`UUID_INVALID`, or no network with that bridge):
 *   no override applies, use the default.
 * - `pending`: a lookup is in flight; the reconciler leaves the fields derived from this object alone
 *   and reports the row in `pending`, so the loop can run again when the lookup resolves.
 * - `unknown`: XAPI is unreachable; a field that already has a value keeps it, a missing one gets the
 *   default, and the row is reported in `unknown` so readiness can say the pass used fallbacks.
 *
 * Adapter contract (docs/design.md §3.2): an object deleted in XAPI keeps its last known ids while
 * its port is still in the database, so an adapter must keep answering `known` with the last record it
 * saw for an object deleted after it was known (a tombstone), not `absent`.
 */
export type XapiObjectState<T> =
  | { readonly state: 'known'; readonly value: T }
  | { readonly state: 'absent' }
  | { readonly state: 'pending' }
  | { readonly state: 'unknown' };

export interface XapiNetwork {
  readonly uuid: Uuid;
  /** `network.other_config`: `nicira-bridge-id`, `vswitch-controller-fail-mode`, `vswitch-disable-in-band`. */
  readonly otherConfig: StringMap;
}

export interface XapiVif {
  readonly uuid: Uuid;
  /** `VIF.other_config`: `nicira-iface-id`. */
  readonly otherConfig: StringMap;
}

export interface XapiVm {
  readonly uuid: Uuid;
  /** `VM.other_config`: `nicira-vm-id`. */
  readonly otherConfig: StringMap;
}

export interface XapiHost {
  /** This host's uuid (`session.get_this_host` → `host.get_uuid`). */
  readonly uuid: Uuid;
  /** `host.software_version`: `product_brand`, `product_version`, `build_number` (empty ones are dropped by XAPI). */
  readonly softwareVersion: StringMap;
}

export interface XapiPool {
  /** `pool.other_config`: `vswitch-controller-fail-mode`. */
  readonly otherConfig: StringMap;
}

/**
 * What XAPI says, as lookups so an adapter answers from its cache without copying. Every method is a
 * pure read: calling it must not start I/O synchronously in a way that changes the answer within the
 * pass (an adapter may note the request and start a lookup afterwards, answering `pending` meanwhile).
 *
 * `absent` for `pool()` means "not exactly one pool" (the old daemon only read a single pool).
 */
export interface XapiView {
  host(): XapiObjectState<XapiHost>;
  pool(): XapiObjectState<XapiPool>;
  /** The network whose `bridge` field equals `bridge` (XAPI `network.get_all_where field "bridge"=…`). */
  networkByBridge(bridge: string): XapiObjectState<XapiNetwork>;
  vif(uuid: Uuid): XapiObjectState<XapiVif>;
  vm(uuid: Uuid): XapiObjectState<XapiVm>;
}

/** Facts from `<root-prefix>/etc/xensource-inventory` (docs/xapi.md §7); each may be missing. */
export interface InventoryFacts {
  readonly installationUuid?: string | undefined;
  readonly productBrand?: string | undefined;
  readonly productVersion?: string | undefined;
  readonly buildNumber?: string | undefined;
}

/**
 * Everything the rules need besides the two views. Precedence for the host identity (docs/design.md §2.1):
 * `systemId` (config) > XAPI host > inventory `INSTALLATION_UUID`. When these facts change (SIGHUP
 * reload), the root row is dirty.
 */
export interface SystemFacts {
  readonly inventory: InventoryFacts;
  /** Config `systemId`: overrides both XAPI and the inventory for `system-id` / `xs-system-uuid`. */
  readonly systemId?: string | undefined;
  /** Config `enableStatistics`: when true, `other_config:enable-statistics=true`; otherwise the key is not touched. */
  readonly enableStatistics: boolean;
  /**
   * Config `managedKeys`: the owned fields (`MANAGED_KEYS` names) the daemon writes and removes; any
   * other is left as found. Absent = all of them. Restart-only in the config, so a pass never sees it
   * change.
   */
  readonly managedKeys?: ReadonlySet<ManagedKey> | undefined;
  /** Config `neutronPortUuid`: `false` leaves `external_ids:neutron-port-uuid` as found. Absent = true. */
  readonly neutronPortUuid?: boolean | undefined;
}
