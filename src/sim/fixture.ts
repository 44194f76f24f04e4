import { CodedError } from '../errors.js';
import { checkMapKey, SimStateError, type SimState, type StringMap } from './state.js';

/**
 * The simulator's fixture format (JSON). Host 0 is "this host": the one `session.get_this_host`
 * returns and the pool master. Every host also gets a control-domain VM (domid 0,
 * `is_control_domain: true`, no VIFs) as on a real pool, so clients must filter it out.
 */
export interface Fixture {
  readonly pool?: { readonly uuid?: string; readonly other_config?: StringMap };
  readonly hosts: readonly FixtureHost[];
  readonly networks: readonly FixtureNetwork[];
  readonly vms: readonly FixtureVm[];
}
export interface FixtureHost {
  readonly uuid?: string;
  readonly hostname: string;
  readonly software_version?: StringMap;
}
export interface FixtureNetwork {
  readonly uuid?: string;
  readonly bridge: string;
  readonly name_label?: string;
  readonly other_config?: StringMap;
}
export interface FixtureVm {
  readonly uuid?: string;
  readonly name_label?: string;
  /** Host index in `hosts` or host uuid; null → halted. */
  readonly resident_on: number | string | null;
  readonly domid?: number;
  readonly other_config?: StringMap;
  readonly vifs: readonly FixtureVif[];
}
export interface FixtureVif {
  readonly uuid?: string;
  readonly device: string;
  /** Network bridge name or uuid. */
  readonly network: string;
  readonly MAC?: string;
  readonly other_config?: StringMap;
}

export class FixtureError extends CodedError<'SIM_FIXTURE_INVALID'> {
  constructor(path: string, problem: string) {
    super('SIM_FIXTURE_INVALID', `fixture ${path}: ${problem}`);
  }
}

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(o: Record<string, Json>, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new FixtureError(`${path}.${key}`, 'must be a non-empty string');
  return v;
}

function reqString(o: Record<string, Json>, key: string, path: string): string {
  const v = optString(o, key, path);
  if (v === undefined) throw new FixtureError(`${path}.${key}`, 'is required');
  return v;
}

function optMap(o: Record<string, Json>, key: string, path: string): StringMap | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!isObject(v)) throw new FixtureError(`${path}.${key}`, 'must be an object of strings');
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new FixtureError(`${path}.${key}.${k}`, 'must be a string');
    try {
      checkMapKey(k);
    } catch (err) {
      throw new FixtureError(`${path}.${key}`, (err as Error).message);
    }
  }
  return v as StringMap;
}

function array(o: Record<string, Json>, key: string, path: string, required: boolean): Json[] {
  const v = o[key];
  if (v === undefined && !required) return [];
  if (!Array.isArray(v)) throw new FixtureError(`${path}.${key}`, 'must be an array');
  return v;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function optUuid(o: Record<string, Json>, path: string): string | undefined {
  const v = optString(o, 'uuid', path);
  if (v !== undefined && !UUID.test(v)) throw new FixtureError(`${path}.uuid`, `${JSON.stringify(v)} is not a uuid`);
  return v;
}

/** Validates parsed JSON as a {@link Fixture}; throws FixtureError naming the bad path. */
export function parseFixture(input: Json): Fixture {
  if (!isObject(input)) throw new FixtureError('$', 'must be an object');
  const poolIn = input.pool;
  if (poolIn !== undefined && !isObject(poolIn)) throw new FixtureError('$.pool', 'must be an object');
  const pool = poolIn === undefined ? undefined : { uuid: optUuid(poolIn, '$.pool'), other_config: optMap(poolIn, 'other_config', '$.pool') };
  const hosts = array(input, 'hosts', '$', true).map((h, i): FixtureHost => {
    const p = `$.hosts[${i}]`;
    if (!isObject(h)) throw new FixtureError(p, 'must be an object');
    return { uuid: optUuid(h, p), hostname: reqString(h, 'hostname', p), software_version: optMap(h, 'software_version', p) };
  });
  if (hosts.length === 0) throw new FixtureError('$.hosts', 'needs at least one host (host 0 is this host)');
  const networks = array(input, 'networks', '$', false).map((n, i): FixtureNetwork => {
    const p = `$.networks[${i}]`;
    if (!isObject(n)) throw new FixtureError(p, 'must be an object');
    return { uuid: optUuid(n, p), bridge: reqString(n, 'bridge', p), name_label: optString(n, 'name_label', p), other_config: optMap(n, 'other_config', p) };
  });
  const vms = array(input, 'vms', '$', false).map((v, i): FixtureVm => {
    const p = `$.vms[${i}]`;
    if (!isObject(v)) throw new FixtureError(p, 'must be an object');
    const resident = v.resident_on;
    if (resident !== null && typeof resident !== 'string' && !(typeof resident === 'number' && Number.isInteger(resident) && resident >= 0 && resident < hosts.length)) {
      throw new FixtureError(`${p}.resident_on`, `must be a host index (0..${hosts.length - 1}), a host uuid or null`);
    }
    const domid = v.domid;
    if (domid !== undefined && !(typeof domid === 'number' && Number.isInteger(domid) && domid >= 0)) throw new FixtureError(`${p}.domid`, 'must be a non-negative integer');
    const vifs = array(v, 'vifs', p, false).map((f, j): FixtureVif => {
      const q = `${p}.vifs[${j}]`;
      if (!isObject(f)) throw new FixtureError(q, 'must be an object');
      const device = reqString(f, 'device', q);
      if (!/^\d+$/.test(device)) throw new FixtureError(`${q}.device`, 'must be a decimal string such as "0"');
      return { uuid: optUuid(f, q), device, network: reqString(f, 'network', q), MAC: optString(f, 'MAC', q), other_config: optMap(f, 'other_config', q) };
    });
    return { uuid: optUuid(v, p), name_label: optString(v, 'name_label', p), resident_on: resident, domid: domid, other_config: optMap(v, 'other_config', p), vifs };
  });
  return { pool, hosts, networks, vms };
}

/** Deterministic fixture for `--generate VMS:VIFS[:HOSTS]`: networks xenbr0..xenbr(VIFS-1), VMs round-robin. */
export function generateFixture(options: { vms: number; vifsPerVm: number; hosts?: number }): Fixture {
  const hostCount = Math.max(1, options.hosts ?? 1);
  const hosts = Array.from({ length: hostCount }, (_, i): FixtureHost => ({ hostname: `host${i}` }));
  const networks = Array.from({ length: Math.max(1, options.vifsPerVm) }, (_, i): FixtureNetwork => ({ bridge: `xenbr${i}` }));
  const nextDomid = new Array<number>(hostCount).fill(1);
  const vms = Array.from({ length: options.vms }, (_, i): FixtureVm => {
    const host = i % hostCount;
    const domid = nextDomid[host] ?? 1;
    nextDomid[host] = domid + 1;
    return {
      name_label: `vm${i}`,
      resident_on: host,
      domid,
      vifs: Array.from({ length: options.vifsPerVm }, (_, d): FixtureVif => ({ device: String(d), network: `xenbr${d}` })),
    };
  });
  return { hosts, networks, vms };
}

/** Parses `VMS:VIFS[:HOSTS]`. */
export function parseGenerateSpec(spec: string): { vms: number; vifsPerVm: number; hosts: number } {
  const m = /^(\d+):(\d+)(?::(\d+))?$/.exec(spec);
  if (m === null) throw new FixtureError('--generate', `expected VMS:VIFS[:HOSTS], got ${JSON.stringify(spec)}`);
  const hosts = m[3] === undefined ? 1 : Number(m[3]);
  if (hosts < 1) throw new FixtureError('--generate', 'HOSTS must be at least 1');
  return { vms: Number(m[1]), vifsPerVm: Number(m[2]), hosts };
}

/** Loads a validated fixture into an empty state; returns host 0 (this host). */
export function loadFixture(state: SimState, fixture: Fixture): { ref: string; uuid: string } {
  try {
    const hosts = fixture.hosts.map((h) => state.addHost({ uuid: h.uuid, hostname: h.hostname, software_version: h.software_version }));
    const thisHost = hosts[0];
    if (thisHost === undefined) throw new FixtureError('$.hosts', 'needs at least one host');
    state.addPool({ uuid: fixture.pool?.uuid, master: thisHost.ref, other_config: fixture.pool?.other_config });
    for (const h of hosts) state.addVm({ name_label: 'Control domain on host', resident_on: h.ref, domid: 0, is_control_domain: true });
    for (const n of fixture.networks) state.addNetwork({ uuid: n.uuid, bridge: n.bridge, name_label: n.name_label, other_config: n.other_config });
    fixture.vms.forEach((v, i) => {
      const resident = typeof v.resident_on === 'number' ? hosts[v.resident_on]?.ref : v.resident_on;
      const vm = state.addVm({ uuid: v.uuid, name_label: v.name_label ?? `vm${i}`, resident_on: resident, domid: v.domid, other_config: v.other_config });
      for (const f of v.vifs) state.addVif({ uuid: f.uuid, vm: vm.ref, network: f.network, device: f.device, MAC: f.MAC, other_config: f.other_config });
    });
    return thisHost;
  } catch (err) {
    if (err instanceof SimStateError) throw new FixtureError('$', err.message);
    throw err;
  }
}
