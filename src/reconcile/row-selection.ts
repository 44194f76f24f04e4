import type { ReconcileResult, RowChange } from './changeset.js';
import type { DependencyIndex } from './dependency-index.js';
import { diffRow, sortChanges, sortUnresolved, sortWarnings } from './diff.js';
import { bridgeIntent, Findings, interfaceIntent, interfaceNamed, interfaceRole, rootIntent } from './rules.js';
import type { RowIntent } from './rules.js';
import type { BridgeRow, InterfaceRow, OvsdbView, SystemFacts, Uuid, XapiView } from './views.js';

/**
 * Which rows a pass covers, and the one place that turns rows into a `ReconcileResult`. Both entry
 * points are pure and synchronous; the result lists are sorted, so they do not depend on the order in
 * which the views' Maps iterate.
 */
function evaluate(
  ovs: OvsdbView,
  xapi: XapiView,
  facts: SystemFacts,
  includeRoot: boolean,
  bridges: Iterable<BridgeRow>,
  interfaces: Iterable<InterfaceRow>,
): ReconcileResult {
  const findings = new Findings();
  const changes: RowChange[] = [];
  const add = (intent: RowIntent): void => {
    const change = diffRow(intent);
    if (change !== undefined) changes.push(change);
  };
  if (includeRoot && ovs.root !== undefined) add(rootIntent(ovs.root, xapi, facts, findings));
  for (const bridge of bridges) add(bridgeIntent(bridge, xapi, facts, findings));
  for (const iface of interfaces) add(interfaceIntent(iface, ovs, xapi, facts, findings));
  return {
    changes: sortChanges(changes),
    warnings: sortWarnings(findings.warnings),
    pending: sortUnresolved(findings.pending),
    unknown: sortUnresolved(findings.unknown),
  };
}

/** Every row: the start-up pass, the periodic resync and `flush-cache`. */
export function reconcileAll(ovs: OvsdbView, xapi: XapiView, facts: SystemFacts): ReconcileResult {
  return evaluate(ovs, xapi, facts, true, ovs.bridges.values(), ovs.interfaces.values());
}

/**
 * What changed since the last pass. Each list names things, not rows to reconcile; `reconcileDirty`
 * expands them into the rows that depend on them. An adapter fills it from the OVSDB replica's change
 * signal and the XAPI watcher's events (or uses `DirtyTracker`, which also maintains the index).
 */
export interface DirtySet {
  /** Everything (reconnect, resync timer, flush-cache): same as `reconcileAll`. */
  readonly all?: boolean;
  /** The Open_vSwitch row changed, or the `SystemFacts` did (config reload, inventory). */
  readonly root?: boolean;
  /** This host's XAPI record changed (uuid, software_version) or its lookup state did. */
  readonly host?: boolean;
  /** The pool's other_config changed: every bridge (bridges are few; interfaces are not walked). */
  readonly pool?: boolean;
  /** Interface rows inserted, modified or deleted (row uuids). */
  readonly interfaces?: Iterable<Uuid>;
  /**
   * Names of Interface rows inserted or deleted. A deleted row is gone from the view, so only its name
   * can find its partner (a removed tap makes its vif active again).
   */
  readonly interfaceNames?: Iterable<string>;
  /** Bridge rows inserted or modified (row uuids). */
  readonly bridges?: Iterable<Uuid>;
  /** XAPI VIFs whose record or lookup state changed (VIF uuids). */
  readonly vifs?: Iterable<Uuid>;
  /** XAPI VMs whose record or lookup state changed (VM uuids). */
  readonly vms?: Iterable<Uuid>;
  /**
   * XAPI networks that changed, by network uuid: reaches the bridges whose `xs-network-uuids` lists it.
   * A network whose bridge does not list it is reached only through `networkBridges`, so adapters that
   * know the record's `bridge` field should pass it there (old and new value when it changed).
   */
  readonly networks?: Iterable<Uuid>;
  /** Bridge names whose XAPI network changed (the network record's `bridge` field). */
  readonly networkBridges?: Iterable<string>;
}

/**
 * Only the rows that depend on what `dirty` names: a changed row, its vif/tap partner, the rows whose
 * xs-vif-uuid / xs-vm-uuid name a changed VIF / VM (and their partners, whose copied keys may lag), the
 * bridges of a changed network, every bridge when the pool changed, the root when the host or facts did.
 *
 * Cost is proportional to the dirty rows: interfaces are reached through `index` and the views' Map
 * lookups, never by walking `ovs.interfaces`. `index` must already reflect every change in `ovs`
 * (update it from the same replica change signal, before the pass). Given that, the result's `changes`
 * equal those of `reconcileAll` whenever every row outside the dirty set was converged.
 */
export function reconcileDirty(
  ovs: OvsdbView,
  xapi: XapiView,
  facts: SystemFacts,
  dirty: DirtySet,
  index: DependencyIndex,
): ReconcileResult {
  if (dirty.all === true) return reconcileAll(ovs, xapi, facts);

  const ifaces = new Map<Uuid, InterfaceRow>();
  const addWithPartner = (row: InterfaceRow): void => {
    ifaces.set(row.uuid, row);
    const { partner } = interfaceRole(row.name);
    if (partner === undefined) return;
    const other = interfaceNamed(ovs, partner);
    if (other !== undefined) ifaces.set(other.uuid, other);
  };
  const addUuid = (uuid: Uuid): void => {
    if (ifaces.has(uuid)) return;
    const row = ovs.interfaces.get(uuid);
    if (row !== undefined) addWithPartner(row);
  };

  for (const uuid of dirty.interfaces ?? []) addUuid(uuid);
  for (const name of dirty.interfaceNames ?? []) {
    const row = interfaceNamed(ovs, name);
    if (row !== undefined) addWithPartner(row);
    const { partner } = interfaceRole(name);
    const other = partner === undefined ? undefined : interfaceNamed(ovs, partner);
    if (other !== undefined) addWithPartner(other);
  }
  for (const vif of dirty.vifs ?? []) for (const uuid of index.interfacesWithVif(vif)) addUuid(uuid);
  for (const vm of dirty.vms ?? []) for (const uuid of index.interfacesWithVm(vm)) addUuid(uuid);

  const bridges = new Map<Uuid, BridgeRow>();
  const addBridge = (uuid: Uuid): void => {
    const row = ovs.bridges.get(uuid);
    if (row !== undefined) bridges.set(uuid, row);
  };
  if (dirty.pool === true) for (const row of ovs.bridges.values()) bridges.set(row.uuid, row);
  for (const uuid of dirty.bridges ?? []) addBridge(uuid);
  for (const network of dirty.networks ?? []) for (const uuid of index.bridgesWithNetwork(network)) addBridge(uuid);
  for (const name of dirty.networkBridges ?? []) for (const uuid of index.bridgesNamed(name)) addBridge(uuid);

  const root = dirty.root === true || dirty.host === true;
  return evaluate(ovs, xapi, facts, root, bridges.values(), ifaces.values());
}
