/**
 * Shared by the fault tests and the soak: an oracle that says what the database must hold, computed by
 * the pure reconciler from a fresh ovs-vsctl snapshot (one IDL transaction) and the simulator's own
 * state, plus churn drivers that act like the hotplug scripts and plant foreign keys to check later.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { OvsdbSandbox } from '../../../src/sandbox/ovsdb-server.js';
import type { ReconcileResult } from '../../../src/reconcile/changeset.js';
import { reconcileAll } from '../../../src/reconcile/row-selection.js';
import type { BridgeRow, InterfaceRow, OpenVSwitchRow, OvsdbView, StringMap, XapiObjectState, XapiView } from '../../../src/reconcile/views.js';
import type { Simulator } from '../../../src/sim/index.js';
import type { SimClass } from '../../../src/sim/state.js';
import { readInventory } from '../../../src/sync/inventory.js';
import { waitFor, type Daemon, type HostEnv, type LocalVif } from '../../helpers/host-env.js';
import { mulberry32 } from '../../../src/sim/ids.js';
import { metricValue } from '../operations/helpers.js';

type Atom = string | number | boolean | ['uuid', string];
type Datum = Atom | ['map', [Atom, Atom][]] | ['set', Atom[]];

function atomText(a: Atom): string {
  return Array.isArray(a) ? a[1] : String(a);
}

function mapOf(d: Datum | undefined): StringMap {
  if (Array.isArray(d) && d[0] === 'map') return new Map(d[1].map(([k, v]) => [atomText(k), atomText(v)]));
  return new Map();
}

function optional(d: Datum | undefined): string | undefined {
  if (d === undefined) return undefined;
  if (Array.isArray(d) && d[0] === 'set') return d[1].length === 0 ? undefined : atomText(d[1][0]!);
  return atomText(d as Atom);
}

interface Table {
  headings: string[];
  data: Datum[][];
}

function rows(table: Table): Record<string, Datum>[] {
  return table.data.map((r) => Object.fromEntries(table.headings.map((h, i) => [h, r[i]!])));
}

/** The three monitored tables, read in ONE ovs-vsctl invocation (one consistent IDL snapshot). */
export async function snapshotView(db: OvsdbSandbox): Promise<OvsdbView> {
  const out = await db.vsctl(
    '--format=json',
    '--data=json',
    '--',
    '--columns=_uuid,external_ids,other_config,system_type,system_version',
    'list',
    'Open_vSwitch',
    '--',
    '--columns=_uuid,name,external_ids,other_config,fail_mode',
    'list',
    'Bridge',
    '--',
    '--columns=_uuid,name,external_ids',
    'list',
    'Interface',
  );
  const [rootT, bridgeT, ifaceT] = out.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Table);
  const rootRow = rows(rootT!)[0];
  const root: OpenVSwitchRow | undefined =
    rootRow === undefined
      ? undefined
      : {
          uuid: atomText(rootRow._uuid as Atom),
          externalIds: mapOf(rootRow.external_ids),
          otherConfig: mapOf(rootRow.other_config),
          systemType: optional(rootRow.system_type),
          systemVersion: optional(rootRow.system_version),
        };
  const bridges = new Map<string, BridgeRow>();
  for (const r of rows(bridgeT!)) {
    const uuid = atomText(r._uuid as Atom);
    bridges.set(uuid, { uuid, name: atomText(r.name as Atom), externalIds: mapOf(r.external_ids), otherConfig: mapOf(r.other_config), failMode: optional(r.fail_mode) });
  }
  const interfaces = new Map<string, InterfaceRow>();
  const interfaceByName = new Map<string, string>();
  for (const r of rows(ifaceT!)) {
    const uuid = atomText(r._uuid as Atom);
    const name = atomText(r.name as Atom);
    interfaces.set(uuid, { uuid, name, externalIds: mapOf(r.external_ids) });
    interfaceByName.set(name, uuid);
  }
  return { root, bridges, interfaces, interfaceByName };
}

const ABSENT = { state: 'absent' } as const;

function simMap(value: unknown): StringMap {
  if (typeof value !== 'object' || value === null) return new Map();
  return new Map(Object.entries(value as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/**
 * What XAPI says, straight from the simulator's state: every object is `known` or `absent` (the
 * daemon's view after it has caught up). Objects deleted in XAPI are not tombstoned here, so churn
 * tests never delete XAPI objects that a port refers to.
 */
export function simView(sim: Simulator): XapiView {
  const state = sim.state;
  const known = <T>(value: T): XapiObjectState<T> => ({ state: 'known', value });
  return {
    host() {
      const row = state.findByUuid('host', sim.thisHost.uuid);
      return row === undefined ? ABSENT : known({ uuid: row.uuid, softwareVersion: simMap(row.fields.software_version) });
    },
    pool() {
      const pools = state.all('pool');
      return pools.length !== 1 ? ABSENT : known({ otherConfig: simMap(pools[0]!.fields.other_config) });
    },
    networkByBridge(bridge) {
      const row = state.all('network').find((n) => n.fields.bridge === bridge);
      return row === undefined ? ABSENT : known({ uuid: row.uuid, otherConfig: simMap(row.fields.other_config) });
    },
    vif(uuid) {
      const row = state.findByUuid('VIF', uuid);
      return row === undefined ? ABSENT : known({ uuid: row.uuid, otherConfig: simMap(row.fields.other_config) });
    },
    vm(uuid) {
      const row = state.findByUuid('VM', uuid);
      return row === undefined ? ABSENT : known({ uuid: row.uuid, otherConfig: simMap(row.fields.other_config) });
    },
  };
}

/** What the rules still want written, per the pure reconciler over a fresh snapshot and the simulator. */
export async function drift(env: HostEnv): Promise<ReconcileResult> {
  const { facts } = await readInventory(env.root);
  return reconcileAll(await snapshotView(env.db), simView(env.sim), { inventory: facts, enableStatistics: false });
}

function describeDrift(result: ReconcileResult): string {
  return JSON.stringify(result.changes.slice(0, 5).map((c) => ({ table: c.table, name: c.name, maps: c.maps, scalars: c.scalars })));
}

/** Waits until the database equals what the rules say (empty ChangeSet, nothing pending). */
export async function waitConverged(env: HostEnv, timeoutMs: number, what = 'convergence'): Promise<void> {
  let last: ReconcileResult | undefined;
  try {
    await waitFor(async () => {
      last = await drift(env);
      return last.changes.length === 0 && last.pending.length === 0;
    }, timeoutMs, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}; still differing: ${last === undefined ? '?' : describeDrift(last)}`, { cause: err });
  }
}

/** Waits for convergence AND for the daemon itself to say so on /readyz. */
export async function waitReady(daemon: Daemon, timeoutMs: number): Promise<ReadyBody> {
  const url = await daemon.healthUrl();
  return waitFor(async () => {
    const r = await readyz(url);
    return r.status === 200 ? r.body : undefined;
  }, timeoutMs, 'readyz 200');
}

export interface ReadyBody {
  status: string;
  checks: Record<string, { ok: boolean; detail: string }>;
}

export async function readyz(baseUrl: string): Promise<{ status: number; body: ReadyBody }> {
  const res = await fetch(`${baseUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as ReadyBody };
}

/** Resident set size of a process, bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

export const vifName = (v: LocalVif): string => `vif${v.domid}.${v.device}`;
export const tapName = (v: LocalVif): string => `tap${v.domid}.${v.device}`;

/** The foreign key the churn plants on every port it plugs: a controller's key the daemon must never touch. */
export const FOREIGN_KEY = 'controller-owned';

/**
 * Hotplug-script actions, idempotent so a command whose reply was lost (server killed mid-commit) can
 * simply be repeated: `--may-exist add-port` + `set`, `--if-exists del-port`.
 */
export async function plugVif(db: OvsdbSandbox, v: LocalVif, foreign: string): Promise<void> {
  const name = vifName(v);
  await db.vsctl(
    '--may-exist',
    'add-port',
    v.bridge,
    name,
    '--',
    'set',
    'Interface',
    name,
    `external_ids:attached-mac="${v.mac}"`,
    `external_ids:xs-network-uuid="${v.networkUuid}"`,
    `external_ids:xs-vif-uuid="${v.vifUuid}"`,
    `external_ids:xs-vm-uuid="${v.vmUuid}"`,
    `external_ids:${FOREIGN_KEY}="${foreign}"`,
  );
}

export async function plugTap(db: OvsdbSandbox, v: LocalVif, foreign: string): Promise<void> {
  const name = tapName(v);
  await db.vsctl('--may-exist', 'add-port', v.bridge, name, '--', 'set', 'Interface', name, `external_ids:${FOREIGN_KEY}="${foreign}"`);
}

export async function unplug(db: OvsdbSandbox, name: string): Promise<void> {
  await db.vsctl('--if-exists', 'del-port', name);
}

/** Sets (value) or removes (undefined) one other_config key in the simulator, raising XAPI events. */
export function setOverride(sim: Simulator, cls: SimClass, uuid: string, key: string, value: string | undefined): void {
  sim.state.removeFromOtherConfig(cls, uuid, key);
  if (value !== undefined) sim.state.addToOtherConfig(cls, uuid, key, value);
}

/** A small deterministic PRNG (mulberry32), so a failing churn can be replayed from its seed. */
export function prng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/**
 * `churn` while ovsdb-server is SIGKILLed and restarted on the same file `kills` times, at moments
 * drawn from `seed` (one in each fifth of the run). Returns the churn's state and the kill count.
 */
export interface KillOptions {
  readonly kills: number;
  readonly killSeed: number;
  /**
   * Awaited after each restart, before the churn goes on (e.g. until the daemon has reconnected), so
   * that every kill finds a connected daemon: two kills inside one reconnect backoff are one outage.
   */
  readonly afterKill?: (kills: number) => Promise<void>;
}

/** Resolves once the daemon's `ovs_xapi_sync_ovsdb_reconnects_total` reaches `count`. */
export async function waitOvsdbReconnects(daemon: Daemon, count: number, timeoutMs: number): Promise<number> {
  const url = await daemon.healthUrl();
  return waitFor(async () => {
    const n = await metricValue(url, 'ovs_xapi_sync_ovsdb_reconnects_total');
    return n >= count ? n : undefined;
  }, timeoutMs, `${count} OVSDB reconnects`);
}

export async function churnWithKills(env: HostEnv, options: ChurnOptions & KillOptions): Promise<ChurnState & { readonly kills: number }> {
  const rnd = prng(options.killSeed);
  const killAt = Array.from({ length: options.kills }, (_, i) => Math.floor((i + rnd()) * (options.cycles / options.kills)));
  let killing = false;
  let kills = 0;
  const result = await churn(env, {
    ...options,
    retryWhile: () => true,
    onProgress: async (done) => {
      if (killing || kills >= killAt.length || done < killAt[kills]!) return;
      killing = true;
      kills++;
      // Restarted on the same database file at once; the other lanes' commands fail and are retried.
      await env.db.kill('SIGKILL');
      await env.db.restart();
      await options.afterKill?.(kills);
      killing = false;
    },
  });
  return { ...result, kills };
}

export interface ChurnOptions {
  readonly cycles: number;
  /** Parallel lanes; each owns a disjoint set of VIFs, so lanes never race on one port. */
  readonly lanes: number;
  readonly seed: number;
  /** Called between cycles (by lane 0) with the number of cycles done so far. */
  readonly onProgress?: (done: number) => Promise<void> | void;
  /** Retry a failed ovs-vsctl (the server is being killed) until this returns false. */
  readonly retryWhile?: () => boolean;
}

export interface ChurnState {
  /** Ports that are plugged at the end → the foreign value planted on them. */
  readonly plugged: Map<string, string>;
  readonly cycles: number;
  readonly overrideChanges: number;
  readonly retries: number;
}

/**
 * Plug/unplug cycles of vif/tap pairs across bridges while XAPI overrides change. Each cycle plugs a
 * vif, plugs its tap half the time, changes an override of the VIF, its VM or its network, then
 * unplugs (the tap first, or both) or leaves the pair plugged. At the end every VIF is left plugged,
 * with a tap on a third of them, so the final state has rows of every kind to check.
 */
export async function churn(env: HostEnv, options: ChurnOptions): Promise<ChurnState> {
  const rnd = prng(options.seed);
  const plugged = new Map<string, string>();
  let done = 0;
  let overrideChanges = 0;
  let retries = 0;
  const vifs = env.vifs;
  const lanes = Array.from({ length: options.lanes }, (_, lane) => vifs.filter((_v, i) => i % options.lanes === lane));
  const networks = env.sim.state.all('network');
  const retry = async (op: () => Promise<void>): Promise<void> => {
    for (;;) {
      try {
        await op();
        return;
      } catch (err) {
        if (options.retryWhile?.() !== true) throw err;
        retries++;
        // The pause between attempts of an operation that failed while a fault is on, not a wait for something.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const changeOverride = (v: LocalVif): void => {
    overrideChanges++;
    const pick = rnd();
    const value = rnd() < 0.3 ? undefined : `c${Math.floor(rnd() * 1e6)}`;
    if (pick < 0.45) setOverride(env.sim, 'VIF', v.vifUuid, 'nicira-iface-id', value);
    else if (pick < 0.8) setOverride(env.sim, 'VM', v.vmUuid, 'nicira-vm-id', value);
    else if (pick < 0.9) {
      const net = networks[Math.floor(rnd() * networks.length)]!;
      setOverride(env.sim, 'network', net.uuid, 'nicira-bridge-id', value);
    } else {
      const net = networks[Math.floor(rnd() * networks.length)]!;
      setOverride(env.sim, 'network', net.uuid, 'vswitch-controller-fail-mode', rnd() < 0.5 ? 'secure' : 'standalone');
    }
  };
  const runLane = async (lane: readonly LocalVif[], index: number): Promise<void> => {
    let k = 0;
    while (done < options.cycles && lane.length > 0) {
      const v = lane[k++ % lane.length]!;
      const tag = `c${done}`;
      done++;
      await retry(() => plugVif(env.db, v, tag));
      plugged.set(vifName(v), tag);
      const withTap = rnd() < 0.5;
      if (withTap) {
        await retry(() => plugTap(env.db, v, tag));
        plugged.set(tapName(v), tag);
      }
      if (rnd() < 0.5) changeOverride(v);
      const end = rnd();
      if (withTap && end < 0.3) {
        await retry(() => unplug(env.db, tapName(v)));
        plugged.delete(tapName(v));
      } else if (end < 0.85) {
        if (withTap) {
          await retry(() => unplug(env.db, tapName(v)));
          plugged.delete(tapName(v));
        }
        await retry(() => unplug(env.db, vifName(v)));
        plugged.delete(vifName(v));
      }
      if (index === 0) await options.onProgress?.(done);
    }
  };
  await Promise.all(lanes.map(runLane));
  // Leave every VIF plugged (a third with a tap) for the final check.
  for (const [i, v] of vifs.entries()) {
    const tag = `final${i}`;
    await retry(() => plugVif(env.db, v, tag));
    plugged.set(vifName(v), tag);
    if (i % 3 === 0) {
      await retry(() => plugTap(env.db, v, tag));
      plugged.set(tapName(v), tag);
    }
  }
  return { plugged, cycles: done, overrideChanges, retries };
}

/** Every foreign key planted on a port that is still plugged is there, with the value planted last. */
export async function expectForeignKeys(env: HostEnv, plugged: ReadonlyMap<string, string>): Promise<void> {
  const view = await snapshotView(env.db);
  const lost: string[] = [];
  for (const [name, value] of plugged) {
    const uuid = view.interfaceByName.get(name);
    const got = uuid === undefined ? undefined : view.interfaces.get(uuid)?.externalIds.get(FOREIGN_KEY);
    if (got !== value) lost.push(`${name}: ${FOREIGN_KEY}=${String(got)} (want ${value})`);
  }
  expect(lost).toEqual([]);
}

/** Plants a foreign key on the root row and on every bridge (keys the daemon must never touch). */
export async function plantRootAndBridgeKeys(env: HostEnv, value: string): Promise<void> {
  const view = await snapshotView(env.db);
  const args: string[] = ['set', 'Open_vSwitch', '.', `external_ids:foreign-root="${value}"`, `other_config:foreign-root="${value}"`];
  for (const b of view.bridges.values()) args.push('--', 'set', 'Bridge', b.name, `external_ids:foreign-br="${value}"`, `other_config:foreign-br="${value}"`);
  await env.db.vsctl(...args);
}

export async function expectRootAndBridgeKeys(env: HostEnv, value: string): Promise<void> {
  const view = await snapshotView(env.db);
  expect(view.root?.externalIds.get('foreign-root')).toBe(value);
  expect(view.root?.otherConfig.get('foreign-root')).toBe(value);
  const wrong = [...view.bridges.values()].filter((b) => b.externalIds.get('foreign-br') !== value || b.otherConfig.get('foreign-br') !== value).map((b) => b.name);
  expect(wrong).toEqual([]);
}
