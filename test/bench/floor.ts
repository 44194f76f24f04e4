import type { OvsdbClient } from '../../src/ovsdb/client.js';
import { set } from '../../src/ovsdb/notation.js';
import { mutate, mutateMapKeys, whereUuid, type Operation } from '../../src/ovsdb/operations.js';
import { cpuSeconds } from './proc.js';
import type { DbWatch, Expectation } from './watch.js';

/** The owned keys of every row as per-row mutates (what the daemon's pass writes). */
export function floorOps(watch: DbWatch, expected: Expectation, uuidOf: ReadonlyMap<string, string>): Operation[] {
  const ops: Operation[] = [];
  for (const [name, want] of expected) {
    const have = watch.externalIds(name);
    const missing: Record<string, string> = {};
    for (const [k, v] of Object.entries(want)) if (have?.get(k) !== v) missing[k] = v;
    const uuid = uuidOf.get(name);
    if (uuid !== undefined && Object.keys(missing).length > 0) ops.push(mutateMapKeys('Interface', uuid, 'external_ids', missing, []));
  }
  return ops;
}

export function undoOps(expected: Expectation, initial: ReadonlyMap<string, Record<string, string>>, uuidOf: ReadonlyMap<string, string>): Operation[] {
  const ops: Operation[] = [];
  for (const [name, want] of expected) {
    const keep = initial.get(name) ?? {};
    const drop = Object.keys(want).filter((k) => !(k in keep));
    const uuid = uuidOf.get(name);
    if (uuid !== undefined && drop.length > 0) ops.push(mutate('Interface', whereUuid(uuid), [['external_ids', 'delete', set(drop)]]));
  }
  return ops;
}

/** One way of sending the floor's writes, and what it cost. */
export interface FloorRun {
  /** Rows per transaction (`all` = one transaction). */
  readonly chunk: number | 'all';
  readonly transactions: number;
  /** First request sent → last commit reply received (ms). */
  readonly commitMs: number;
  /** First request sent → the first chunk's rows all visible to the bench's monitor (ms). */
  readonly firstChunkVisibleMs: number;
  /** First request sent → every row visible to the bench's monitor (ms). */
  readonly allVisibleMs: number;
  /** ovsdb-server CPU from the first request to every row visible (ms; 10 ms ticks). */
  readonly serverCpuMs: number;
}

/**
 * ovsdb-server's floor for the daemon's cold-start writes: the same mutates as one transaction and as
 * pipelined chunks of N rows (all sent at once, as a daemon that chunked would), each timed to its last
 * commit reply and to the moment a monitoring client (the bench's `DbWatch`, another session) holds every
 * row. Between runs the keys are taken off again (`undo`), so each run writes the same.
 */
export async function measureFloor(
  writer: OvsdbClient,
  watch: DbWatch,
  expected: Expectation,
  ops: readonly Operation[],
  undo: readonly Operation[],
  chunks: readonly (number | 'all')[],
  serverPid: number,
): Promise<FloorRun[]> {
  const runs: FloorRun[] = [];
  const names = [...expected.keys()];
  for (const chunk of chunks) {
    if (chunk !== 'all' && chunk >= ops.length) continue;
    const size = chunk === 'all' ? ops.length : chunk;
    const parts: Operation[][] = [];
    for (let i = 0; i < ops.length; i += size) parts.push(ops.slice(i, i + size));
    // The first chunk's rows, by the order floorOps built the operations in (the expectation's order).
    const firstNames = names.slice(0, parts[0]?.length ?? 0);
    watch.expect(expected);
    const cpu0 = cpuSeconds(serverPid);
    const t0 = performance.now();
    const firstVisible = watch.waitUntil(() => firstNames.every((n) => watch.rowMatches(n)), 120_000);
    firstVisible.catch(() => undefined);
    const replies = Promise.all(parts.map((p) => writer.transact(p).then(() => performance.now())));
    // Handled now, awaited below: a failed transaction must not go unhandled while the monitor waits.
    replies.catch(() => undefined);
    const allVisible = await watch.waitUntil(() => watch.wrongRows === 0, 120_000);
    const serverCpuMs = Math.round((cpuSeconds(serverPid) - cpu0) * 1000);
    const committed = Math.max(...(await replies));
    runs.push({ chunk, transactions: parts.length, commitMs: round(committed - t0), firstChunkVisibleMs: round((await firstVisible) - t0), allVisibleMs: round(allVisible - t0), serverCpuMs });
    await writer.transact([...undo]);
    await watch.waitUntil(() => watch.wrongRows === expected.size, 120_000);
  }
  return runs;
}

/** The run that made every row visible soonest. */
export function bestFloor(runs: readonly FloorRun[]): FloorRun | undefined {
  return runs.reduce<FloorRun | undefined>((a, r) => (a === undefined || r.allVisibleMs < a.allVisibleMs ? r : a), undefined);
}

export function floorTable(name: string, runs: readonly FloorRun[]): string {
  const best = bestFloor(runs);
  const rows = runs.map((r) => `  ${String(r.chunk).padStart(5)} rows/txn × ${String(r.transactions).padStart(3)}: commit ${String(r.commitMs).padStart(7)} ms, first chunk visible ${String(r.firstChunkVisibleMs).padStart(7)} ms, all visible ${String(r.allVisibleMs).padStart(7)} ms, ovsdb-server CPU ${String(r.serverCpuMs).padStart(5)} ms${r === best ? '  ← best' : ''}`);
  return [`${name}: ovsdb-server floor, the cold start's writes as pipelined chunks (timed from the first request)`, ...rows].join('\n');
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
