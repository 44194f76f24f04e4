import { mkdirSync } from 'node:fs';
import { pino } from 'pino';
import { OvsdbClient } from '../../src/ovsdb/client.js';
import { map, namedUuid, set } from '../../src/ovsdb/notation.js';
import { insert, mutate, mutateMapKeys, whereUuid, type Operation } from '../../src/ovsdb/operations.js';
import { startHostEnv, type Daemon, type HostEnv, type LocalVif } from '../helpers/host-env.js';
import { tracedColdStart, type TracedColdStart } from './coldstart.js';
import { bestFloor, floorOps, measureFloor, undoOps, type FloorRun } from './floor.js';
import { cpuSeconds, daemonMetrics, peakRssMb, rssMb } from './proc.js';
import { awaitHeapSnapshot, HEAP_SNAPSHOT_SIGNAL, newestCpuProfile, summariseCpuProfile, summariseHeapSnapshot, type CpuSummary, type HeapSummary } from './profile.js';
import { DbWatch } from './watch.js';

export interface ScenarioSpec {
  readonly name: string;
  readonly vms: number;
  readonly vifsPerVm: number;
  readonly hosts: number;
  /** The simulator's per-call latency knob. */
  readonly latencyMs: number;
  readonly portSamples: number;
  readonly overrideSamples: number;
  readonly idleSeconds: number;
  /** Directory for the daemon's `--cpu-prof` output and heap snapshot (profiling runs only). */
  readonly cpuProfDir?: string;
  /** Also time the floor's writes as pipelined chunks of these many rows (`all`: one transaction). */
  readonly floorChunks?: readonly (number | 'all')[];
  /** Run a traced cold start first (phases; see coldstart.ts). Default true. */
  readonly traced?: boolean;
}

export interface ScenarioResult {
  readonly name: string;
  readonly interfaces: number;
  readonly localVms: number;
  readonly poolVms: number;
  readonly poolVifs: number;
  readonly latencyMs: number;
  /** Initial monitor of a fresh client alone (ms). */
  readonly floorMonitorMs: number;
  /** The same writes as the daemon's, as one raw transaction, until the monitor shows them (ms). */
  readonly floorTransactMs: number;
  readonly floorMs: number;
  readonly floorRequestBytes: number;
  /** The floor's writes in chunks (when asked), and the chunk size that made every row visible soonest. */
  readonly floorRuns: readonly FloorRun[];
  readonly floorBestChunk: number | 'all' | undefined;
  readonly floorBestMs: number;
  /** The traced cold start: its own duration (through the proxy, at debug level) and its phases. */
  readonly traced: TracedColdStart | undefined;
  /** Daemon spawn → every row correct on the bench monitor (ms). */
  readonly coldStartMs: number;
  readonly coldVsFloor: number;
  readonly coldXapiCalls: number;
  readonly coldXapiBytes: number;
  readonly coldXapiCallsByMethod: Readonly<Record<string, number>>;
  /**
   * RSS once the cold start has settled (`idleSeconds` after convergence): what the daemon holds from
   * then on. V8's memory reducer compacts the heap the burst left some 8-10 s after the daemon starts.
   */
  readonly rssMb: number;
  /** RSS at the moment every row was correct, before the daemon gave back what the cold start used. */
  readonly rssAtConvergenceMb: number;
  readonly peakRssMb: number;
  /** RSS after the cold start and the VM.start port samples (issue 14: after 30 new ports). */
  readonly rssAfterPortsMb: number;
  /** V8 heap used (the daemon's `/metrics`, `nodejs_heap_size_used_bytes`) at convergence, settled, after the ports. */
  readonly heapAtConvergenceMb: number;
  readonly heapSettledMb: number;
  readonly heapAfterPortsMb: number;
  readonly coldXapiKib: number;
  /** Reconcile passes up to convergence, and their summed wall time in s (the daemon's metrics). */
  readonly coldPasses: number;
  readonly coldPassSeconds: number;
  readonly cpuSeconds: number;
  /** CPU seconds from convergence to the end of the settling period (follow-up pass, heap compaction). */
  readonly cpuSettlingSeconds: number;
  readonly idleCpuPercent: number;
  readonly portP50Ms: number;
  readonly portP90Ms: number;
  readonly portMaxMs: number;
  /** XAPI calls per VM.start of the per-port samples (reservation, port, resident). */
  readonly portXapiCallsPerPort: number;
  /** XAPI KiB per such VM.start (events included): must not grow with the pool. */
  readonly portXapiKibPerPort: number;
  /**
   * The per-port floor, daemon stopped (p50, ms): the hotplug's port transaction carrying its iface-id
   * → the bench's monitor has it; a one-key write (as the daemon's) → the monitor has it. A port's
   * iface-id through the daemon needs one of each in sequence, plus the daemon's own turn-around.
   */
  readonly portFloorInsertP50Ms?: number;
  readonly portFloorWriteP50Ms?: number;
  readonly unannouncedPortP50Ms: number;
  readonly unannouncedPortP90Ms: number;
  readonly overrideP50Ms: number;
  readonly overrideMaxMs: number;
  readonly wallSeconds: number;
  /** `--profile` only: the daemon's heap at the end, and its CPU profile over the cold start and the whole run. */
  readonly heap?: HeapSummary;
  readonly cpuCold?: CpuSummary;
  readonly cpuWhole?: CpuSummary;
}

const BATCH = 1000;

function mac(n: number): string {
  const h = (b: number): string => b.toString(16).padStart(2, '0');
  return `00:16:3e:${h((n >> 16) & 0xff)}:${h((n >> 8) & 0xff)}:${h(n & 0xff)}`;
}

function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Plan {
  /** Rows to insert: name, bridge, facts (empty for taps). */
  readonly rows: { name: string; bridge: string; keys: Record<string, string> }[];
  readonly expected: Map<string, Record<string, string>>;
}

/**
 * What the hotplug scripts would have written for this host's VIFs (vif rows with the four xs keys; a
 * tap twin, with no keys, for every VIF of every other VM), and what the rules of docs/design.md §2 make of it
 * with no XAPI overrides: iface-id = xs-vif-uuid, vm-id = xs-vm-uuid, iface-status by pairing, and the
 * tap's copied keys.
 */
export function plan(vifs: readonly LocalVif[]): Plan {
  const vmIndex = new Map<string, number>();
  for (const v of vifs) if (!vmIndex.has(v.vmUuid)) vmIndex.set(v.vmUuid, vmIndex.size);
  const rows: Plan['rows'] = [];
  const expected = new Map<string, Record<string, string>>();
  for (const v of vifs) {
    const facts = { 'attached-mac': v.mac, 'xs-network-uuid': v.networkUuid, 'xs-vif-uuid': v.vifUuid, 'xs-vm-uuid': v.vmUuid };
    const ids = { 'iface-id': v.vifUuid, 'vm-id': v.vmUuid };
    const hvm = (vmIndex.get(v.vmUuid) ?? 0) % 2 === 0;
    const vifName = `vif${v.domid}.${v.device}`;
    rows.push({ name: vifName, bridge: v.bridge, keys: facts });
    expected.set(vifName, { ...facts, ...ids, 'iface-status': hvm ? 'inactive' : 'active' });
    if (hvm) {
      const tapName = `tap${v.domid}.${v.device}`;
      rows.push({ name: tapName, bridge: v.bridge, keys: {} });
      expected.set(tapName, { ...facts, ...ids, 'iface-status': 'active' });
    }
  }
  return { rows, expected };
}

/** Interface+Port inserts and one `Bridge.ports` mutate per bridge, in transactions of `BATCH` rows. */
export async function populate(writer: OvsdbClient, bridges: ReadonlyMap<string, string>, rows: Plan['rows']): Promise<void> {
  for (let start = 0; start < rows.length; start += BATCH) {
    const ops: Operation[] = [];
    const ports = new Map<string, ReturnType<typeof namedUuid>[]>();
    rows.slice(start, start + BATCH).forEach((row, i) => {
      ops.push(
        insert('Interface', { name: row.name, external_ids: map(row.keys) }, `i${i}`),
        insert('Port', { name: row.name, interfaces: namedUuid(`i${i}`) }, `p${i}`),
      );
      const list = ports.get(row.bridge) ?? [];
      list.push(namedUuid(`p${i}`));
      ports.set(row.bridge, list);
    });
    for (const [bridge, list] of ports) {
      const uuid = bridges.get(bridge);
      if (uuid === undefined) throw new Error(`bench: no bridge ${bridge}`);
      ops.push(mutate('Bridge', whereUuid(uuid), [['ports', 'insert', set(list)]]));
    }
    await writer.transact(ops);
  }
}

/** The time the bench leaves between XAPI reserving the host for a VM and the VM's port appearing. */
const DOMAIN_BUILD_MS = 50;

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

export async function runScenario(spec: ScenarioSpec): Promise<ScenarioResult> {
  const wall0 = performance.now();
  // Over a unix socket, as on dom0 (the daemon's default XAPI URL is unix:/var/lib/xcp/xapi).
  const env: HostEnv = await startHostEnv({ vms: spec.vms, vifsPerVm: spec.vifsPerVm, hosts: spec.hosts, xapiOverUnix: true });
  let daemon: Daemon | undefined;
  const watch = new DbWatch(env.db.remote);
  const writer = new OvsdbClient({ remote: env.db.remote, logger: pino({ level: 'silent' }), requestTimeoutMs: 120_000, probeIntervalMs: 0, tables: { Bridge: { name: 'string' } } });
  try {
    const { rows, expected } = plan(env.vifs);
    await env.addBridges();
    writer.start();
    await watch.start();
    while (!writer.replica.ready) await sleep(5);
    const bridges = new Map([...writer.replica.table('Bridge')!.values()].map((b) => [b.name, b._uuid]));
    await populate(writer, bridges, rows);
    await watch.waitUntil(() => rows.every((r) => watch.externalIds(r.name) !== undefined), 60_000);
    const initial = new Map(rows.map((r) => [r.name, r.keys]));
    const poolVms = env.sim.state.count('VM');
    const poolVifs = env.sim.state.count('VIF');
    const uuidOf = new Map<string, string>();
    for (const [uuid, row] of watch.client.replica.table('Interface')!) uuidOf.set(row.name, uuid);
    log(`${spec.name}: ${rows.length} interfaces in the database (${env.sim.state.count('VM')} VMs, ${env.sim.state.count('VIF')} VIFs in the pool)`);

    // Floor 1: the initial monitor alone, as the daemon asks for it (default monitor spec).
    const fresh = new OvsdbClient({ remote: env.db.remote, logger: pino({ level: 'silent' }), requestTimeoutMs: 120_000, probeIntervalMs: 0 });
    const m0 = performance.now();
    fresh.start();
    while (!fresh.replica.ready) await new Promise((r) => setImmediate(r));
    const floorMonitorMs = performance.now() - m0;
    await fresh.close();

    // Floor 2: the daemon's writes as one raw transaction, timed to the monitor seeing all of them;
    // then as chunks (floor.ts).
    watch.expect(expected);
    const ops = floorOps(watch, expected, uuidOf);
    const undo = undoOps(expected, initial, uuidOf);
    const floorRequestBytes = Buffer.byteLength(JSON.stringify({ method: 'transact', params: ['Open_vSwitch', ...ops], id: 1 }));
    const floorRuns = await measureFloor(writer, watch, expected, ops, undo, ['all', ...(spec.floorChunks ?? [])], env.db.pid);
    const floorTransactMs = floorRuns[0]?.allVisibleMs ?? Number.NaN;
    const best = bestFloor(floorRuns);
    log(`${spec.name}: floor ${round(floorMonitorMs)} ms monitor + ${round(floorTransactMs)} ms transaction (${Math.round(floorRequestBytes / 1024)} KiB)`);

    await env.sim.faults.set({ latencyMs: spec.latencyMs });
    const hostUuid = env.sim.thisHost.uuid;
    const converged = (): boolean => watch.wrongRows === 0 && watch.rootSystemId === hostUuid;
    let traced: TracedColdStart | undefined;
    if (spec.traced !== false) {
      traced = await tracedColdStart(env, watch, converged);
      log(`${spec.name}: traced cold start ${traced.coldStartMs} ms`);
      await writer.transact(undo);
      await watch.waitUntil(() => watch.wrongRows === expected.size, 60_000);
    }

    // Cold start, untraced: the headline figures.
    env.sim.resetCounters();
    const profDir = spec.cpuProfDir;
    if (profDir !== undefined) mkdirSync(profDir, { recursive: true });
    const profiledSince = Date.now();
    const hr0 = process.hrtime.bigint();
    const c0 = performance.now();
    daemon = env.startDaemon({
      logLevel: 'info',
      ...(profDir !== undefined ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--heapsnapshot-signal=${HEAP_SNAPSHOT_SIGNAL}`, `--diagnostic-dir=${profDir}`] } : {}),
    });
    const tCold = await watch.waitUntil(converged, 120_000);
    const hrCold = process.hrtime.bigint();
    const coldStartMs = tCold - c0;
    const cold = env.sim.counters;
    const cpuCold = cpuSeconds(daemon.pid);
    const rssCold = rssMb(daemon.pid);
    const atConvergence = await daemonMetrics(daemon);
    const heapAtConvergenceMb = atConvergence.heapUsedMb;

    log(`${spec.name}: cold start ${round(coldStartMs)} ms, ${cold.totalCalls} XAPI calls, ${Math.round((cold.bytesIn + cold.bytesOut) / 1024)} KiB, ${round(rssCold)} MB RSS, ${round(cpuCold, 2)} s CPU`);
    // Settling: the follow-up pass, the re-subscription, and V8's memory reducer, which compacts the
    // heap the burst left some 8-10 s after the daemon started. Its CPU is reported, not hidden.
    await sleep(spec.idleSeconds * 1000);
    const rssSettled = rssMb(daemon.pid);
    const cpuSettling = cpuSeconds(daemon.pid) - cpuCold;
    const heapSettledMb = (await daemonMetrics(daemon)).heapUsedMb;
    await sleep(1000);
    // Idle: nothing changes in either peer.
    const idle0 = cpuSeconds(daemon.pid);
    const i0 = performance.now();
    await sleep(spec.idleSeconds * 1000);
    const idleCpuPercent = ((cpuSeconds(daemon.pid) - idle0) / ((performance.now() - i0) / 1000)) * 100;
    log(`${spec.name}: settled at ${round(rssSettled)} MB RSS (${round(cpuSettling, 2)} s CPU settling), idle CPU ${round(idleCpuPercent)} %`);

    // Per-port latency, as a VM.start goes (reference: Xapi_xenops.start): XAPI reserves this host for
    // the halted VM (host operation + VM.scheduled_to_be_resident_on), xenopsd builds the domain and
    // the vif hotplug script adds the port (one transaction with the four xs keys; timed until its
    // iface-id is right), and only then does XAPI set resident_on. The domain build is given
    // DOMAIN_BUILD_MS, far less than a real one takes.
    const thisHost = env.sim.thisHost.ref;
    const net = env.vifs[0]!;
    const bridgeUuid = bridges.get(net.bridge)!;
    let domid = 100_000;
    const haltedVm = (label: string): { name: string; vif: string; vm: string; vmRef: string; net: string; mac: string } => {
      domid += 1;
      const vm = env.sim.state.addVm({ name_label: label });
      const m = mac(0xf00000 + domid);
      const vif = env.sim.state.addVif({ vm: vm.ref, network: net.bridge, device: '0', MAC: m });
      return { name: `vif${domid}.0`, vif: vif.uuid, vm: vm.uuid, vmRef: vm.ref, net: net.networkUuid, mac: m };
    };
    // `withIfaceId`: the port arrives with its iface-id, so no daemon is needed (the floor below).
    const plugAndTime = async (p: ReturnType<typeof haltedVm>, withIfaceId = false): Promise<number> => {
      const keys: Record<string, string> = { 'attached-mac': p.mac, 'xs-network-uuid': p.net, 'xs-vif-uuid': p.vif, 'xs-vm-uuid': p.vm };
      if (withIfaceId) keys['iface-id'] = p.vif;
      const s0 = performance.now();
      // A failure shows as the wait below timing out.
      writer
        .transact([
          insert('Interface', { name: p.name, external_ids: map(keys) }, 'i'),
          insert('Port', { name: p.name, interfaces: namedUuid('i') }, 'p'),
          mutate('Bridge', whereUuid(bridgeUuid), [['ports', 'insert', set([namedUuid('p')])]]),
        ])
        .catch(() => undefined);
      const s1 = await watch.waitUntil(() => watch.externalIds(p.name)?.get('iface-id') === p.vif, 30_000);
      return s1 - s0;
    };
    const calls0 = env.sim.counters.totalCalls;
    const bytes0 = env.sim.counters.bytesIn + env.sim.counters.bytesOut;
    const portMs: number[] = [];
    for (let i = 0; i < spec.portSamples; i++) {
      const p = haltedVm(`bench-${i}`);
      const task = env.sim.state.beginVmPlacement(p.vmRef, thisHost);
      await sleep(DOMAIN_BUILD_MS);
      portMs.push(await plugAndTime(p));
      env.sim.state.completeVmPlacement(p.vmRef, task, domid);
      await sleep(30);
    }
    const portCalls = env.sim.counters.totalCalls - calls0;
    const portBytes = env.sim.counters.bytesIn + env.sim.counters.bytesOut - bytes0;
    const rssAfterPorts = rssMb(daemon.pid);
    const heapAfterPortsMb = (await daemonMetrics(daemon)).heapUsedMb;
    // A port XAPI gave no notice of (its VM not placed here: plugged by hand, or a XAPI that cannot
    // say which VMs are scheduled here): the lookup path.
    const unannouncedMs: number[] = [];
    for (let i = 0; i < Math.ceil(spec.portSamples / 2); i++) {
      const p = haltedVm(`bench-unannounced-${i}`);
      await sleep(30);
      unannouncedMs.push(await plugAndTime(p));
    }

    // XAPI override → database: a VIF's other_config:nicira-iface-id set in XAPI.
    const overrideMs: number[] = [];
    for (let i = 0; i < spec.overrideSamples; i++) {
      const v = env.vifs[(i * 7919) % env.vifs.length]!;
      const want = `override-${i}-${v.vifUuid.slice(0, 8)}`;
      const name = `vif${v.domid}.${v.device}`;
      const o0 = performance.now();
      env.sim.state.addToOtherConfig('VIF', v.vifUuid, 'nicira-iface-id', want);
      const o1 = await watch.waitUntil(() => watch.externalIds(name)?.get('iface-id') === want, 30_000);
      overrideMs.push(o1 - o0);
      await sleep(30);
    }

    let heap: HeapSummary | undefined;
    if (profDir !== undefined) {
      const asked = Date.now();
      daemon.child.kill(HEAP_SNAPSHOT_SIGNAL);
      const file = await awaitHeapSnapshot(profDir, asked);
      if (file !== undefined) heap = summariseHeapSnapshot(file);
      else log(`${spec.name}: no heap snapshot appeared in ${profDir}`);
    }

    const measured: ScenarioResult = {
      name: spec.name,
      interfaces: rows.length,
      localVms: new Set(env.vifs.map((v) => v.vmUuid)).size,
      poolVms,
      poolVifs,
      latencyMs: spec.latencyMs,
      floorMonitorMs: round(floorMonitorMs),
      floorTransactMs: round(floorTransactMs),
      floorMs: round(floorMonitorMs + floorTransactMs),
      floorRequestBytes,
      floorRuns,
      floorBestChunk: best?.chunk,
      floorBestMs: best?.allVisibleMs ?? Number.NaN,
      traced,
      coldStartMs: round(coldStartMs),
      coldVsFloor: round(coldStartMs / (floorMonitorMs + floorTransactMs), 2),
      coldXapiCalls: cold.totalCalls,
      coldXapiBytes: cold.bytesIn + cold.bytesOut,
      coldXapiCallsByMethod: cold.calls,
      rssMb: round(rssSettled),
      rssAtConvergenceMb: round(rssCold),
      peakRssMb: round(peakRssMb(daemon.pid)),
      rssAfterPortsMb: round(rssAfterPorts),
      heapAtConvergenceMb,
      heapSettledMb,
      heapAfterPortsMb,
      coldXapiKib: Math.round((cold.bytesIn + cold.bytesOut) / 1024),
      coldPasses: atConvergence.passes,
      coldPassSeconds: atConvergence.passSeconds,
      cpuSeconds: round(cpuCold, 2),
      cpuSettlingSeconds: round(cpuSettling, 2),
      idleCpuPercent: round(idleCpuPercent, 2),
      portP50Ms: round(percentile(portMs, 50)),
      portP90Ms: round(percentile(portMs, 90)),
      portMaxMs: round(Math.max(...portMs)),
      portXapiCallsPerPort: round(portCalls / Math.max(1, portMs.length), 2),
      portXapiKibPerPort: round(portBytes / 1024 / Math.max(1, portMs.length), 1),
      unannouncedPortP50Ms: round(percentile(unannouncedMs, 50)),
      unannouncedPortP90Ms: round(percentile(unannouncedMs, 90)),
      overrideP50Ms: round(percentile(overrideMs, 50)),
      overrideMaxMs: round(Math.max(...overrideMs)),
      wallSeconds: round((performance.now() - wall0) / 1000),
      ...(heap !== undefined ? { heap } : {}),
    };
    const stopped = await daemon.stop('SIGTERM');
    if (stopped.code !== 0) log(`${spec.name}: daemon exited with ${String(stopped.code ?? stopped.signal)}`);

    // The per-port floor, with the daemon gone: the hotplug's transaction alone (the port arrives with
    // its iface-id) and a one-key write like the daemon's, each timed to the bench's monitor. A new
    // port's iface-id needs one of each, one after the other.
    const insertFloorMs: number[] = [];
    for (let i = 0; i < spec.portSamples; i++) {
      insertFloorMs.push(await plugAndTime(haltedVm(`bench-floor-${i}`), true));
      await sleep(30);
    }
    const writeFloorMs: number[] = [];
    for (let i = 0; i < spec.portSamples; i++) {
      const v = env.vifs[(i * 7919 + 13) % env.vifs.length]!;
      const name = `vif${v.domid}.${v.device}`;
      const want = `floor-${i}`;
      const w0 = performance.now();
      writer.transact([mutateMapKeys('Interface', uuidOf.get(name)!, 'external_ids', { 'iface-id': want }, [])]).catch(() => undefined);
      writeFloorMs.push((await watch.waitUntil(() => watch.externalIds(name)?.get('iface-id') === want, 30_000)) - w0);
      await sleep(30);
    }
    const result: ScenarioResult = { ...measured, portFloorInsertP50Ms: round(percentile(insertFloorMs, 50)), portFloorWriteP50Ms: round(percentile(writeFloorMs, 50)) };
    const profile = profDir === undefined ? undefined : newestCpuProfile(profDir, profiledSince);
    if (profile === undefined) return result;
    // V8's profile clock is CLOCK_MONOTONIC in microseconds, as process.hrtime here.
    return { ...result, cpuCold: summariseCpuProfile(profile, Number(hr0 / 1000n), Number(hrCold / 1000n)), cpuWhole: summariseCpuProfile(profile, 0, Number.MAX_SAFE_INTEGER) };
  } catch (err) {
    if (daemon !== undefined) log(`${spec.name}: daemon stderr: ${daemon.stderr().slice(-2000)}\nlast logs: ${daemon.logs.slice(-5).map((l) => JSON.stringify(l).slice(0, 400)).join('\n')}`);
    throw err;
  } finally {
    await watch.close();
    await writer.close();
    await env.close();
  }
}
