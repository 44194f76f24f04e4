import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `--profile` readers: what a daemon heap snapshot holds, and where a CPU profile's time went, as short
 * tables for the bench's printout. Shallow sizes only (V8's "Summary" view): a retained-size view needs
 * the dominator tree, which DevTools computes from the same file.
 */

/** The signal the bench starts the daemon's `--heapsnapshot-signal` on: not one the daemon handles. */
export const HEAP_SNAPSHOT_SIGNAL = 'SIGPWR';

interface HeapSnapshotFile {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[], ...unknown[]]; readonly edge_fields: string[] } };
  readonly nodes: number[];
  readonly edges: number[];
  readonly strings: string[];
}

export interface HeapSummary {
  readonly totalMb: number;
  readonly nodes: number;
  /** By constructor (objects) or V8 node type (the rest): count and shallow MB, largest first. */
  readonly byClass: { readonly name: string; readonly count: number; readonly mb: number }[];
  readonly stringMb: number;
  readonly strings: number;
  /** MB that a string table would save: bytes of every copy of a string beyond its first. */
  readonly duplicateStringMb: number;
  readonly topDuplicates: { readonly text: string; readonly copies: number; readonly mb: number }[];
  /** String bytes by the class of the first object found referring to them. */
  readonly stringsHeldBy: { readonly name: string; readonly mb: number }[];
}

const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string']);
const MB = 1024 * 1024;
const r2 = (n: number): number => Math.round(n * 100) / 100;

export function summariseHeapSnapshot(path: string, top = 15): HeapSummary {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as HeapSnapshotFile;
  const nf = snap.snapshot.meta.node_fields;
  const ef = snap.snapshot.meta.edge_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = nf.length;
  const [TYPE, NAME, SIZE, EDGES] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f)) as [number, number, number, number];
  const EDGE_WIDTH = ef.length;
  const TO = ef.indexOf('to_node');
  const { nodes, edges, strings } = snap;
  const classOf = (i: number): string => {
    const type = types[nodes[i + TYPE]!] ?? '?';
    return type === 'object' || type === 'native' ? (strings[nodes[i + NAME]!] ?? '?') : `(${type})`;
  };
  const isString = (i: number): boolean => STRING_TYPES.has(types[nodes[i + TYPE]!] ?? '');

  const byClass = new Map<string, { count: number; bytes: number }>();
  const dup = new Map<string, { copies: number; bytes: number }>();
  let total = 0;
  let stringBytes = 0;
  let stringCount = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const size = nodes[i + SIZE]!;
    total += size;
    const name = isString(i) ? '(string)' : classOf(i);
    const c = byClass.get(name) ?? { count: 0, bytes: 0 };
    c.count += 1;
    c.bytes += size;
    byClass.set(name, c);
    if (isString(i)) {
      stringBytes += size;
      stringCount += 1;
      const text = strings[nodes[i + NAME]!] ?? '';
      const d = dup.get(text) ?? { copies: 0, bytes: 0 };
      d.copies += 1;
      d.bytes += size;
      dup.set(text, d);
    }
  }
  let duplicateBytes = 0;
  for (const d of dup.values()) if (d.copies > 1) duplicateBytes += d.bytes - d.bytes / d.copies;

  // Strings by their first referrer: one pass over the edges, parent by parent.
  const held = new Map<string, number>();
  const seen = new Uint8Array(nodes.length / width);
  let edge = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const owner = isString(i) ? undefined : classOf(i);
    const n = nodes[i + EDGES]!;
    for (let e = 0; e < n; e++, edge += EDGE_WIDTH) {
      const to = edges[edge + TO]!;
      if (owner === undefined || !isString(to) || seen[to / width] === 1) continue;
      seen[to / width] = 1;
      held.set(owner, (held.get(owner) ?? 0) + nodes[to + SIZE]!);
    }
  }

  return {
    totalMb: r2(total / MB),
    nodes: nodes.length / width,
    byClass: [...byClass].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top).map(([name, c]) => ({ name, count: c.count, mb: r2(c.bytes / MB) })),
    stringMb: r2(stringBytes / MB),
    strings: stringCount,
    duplicateStringMb: r2(duplicateBytes / MB),
    topDuplicates: [...dup]
      .filter(([, d]) => d.copies > 1)
      .sort((a, b) => b[1].bytes - b[1].bytes / b[1].copies - (a[1].bytes - a[1].bytes / a[1].copies))
      .slice(0, 8)
      .map(([text, d]) => ({ text: JSON.stringify(text.slice(0, 48)), copies: d.copies, mb: r2((d.bytes - d.bytes / d.copies) / MB) })),
    stringsHeldBy: [...held].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([name, bytes]) => ({ name, mb: r2(bytes / MB) })),
  };
}

export function heapTable(label: string, h: HeapSummary): string {
  return [
    `${label}: heap snapshot, ${h.totalMb} MB shallow in ${h.nodes} nodes; strings ${h.stringMb} MB in ${h.strings} (duplicates beyond the first copy: ${h.duplicateStringMb} MB)`,
    ...h.byClass.map((c) => `  ${c.name.slice(0, 40).padEnd(40)} ${String(c.count).padStart(8)} × ${String(c.mb).padStart(7)} MB`),
    `  strings held by (first referrer): ${h.stringsHeldBy.map((s) => `${s.name} ${s.mb} MB`).join(', ')}`,
    `  most duplicated strings (MB beyond the first copy): ${h.topDuplicates.map((d) => `${d.text} ×${d.copies} ${d.mb}`).join(', ')}`,
  ].join('\n');
}

/** Waits until a heap snapshot appears in `dir` (newer than `after`, epoch ms) and stops growing. */
export async function awaitHeapSnapshot(dir: string, after: number, timeoutMs = 60_000): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const file = existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.heapsnapshot'))
          .map((f) => join(dir, f))
          .find((f) => statSync(f).mtimeMs >= after)
      : undefined;
    if (file === undefined) continue;
    const size = statSync(file).size;
    if (size > 0 && size === last) return file;
    last = size;
  }
  return undefined;
}

interface CpuProfile {
  readonly nodes: { readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number } }[];
  readonly startTime: number;
  readonly samples: number[];
  readonly timeDeltas: number[];
}

export interface CpuSummary {
  readonly sampledMs: number;
  readonly top: { readonly fn: string; readonly ms: number; readonly percent: number }[];
  /** Self time by source file (the daemon's modules, node internals, GC…). */
  readonly byFile: { readonly file: string; readonly ms: number }[];
}

/**
 * Self time by function and by file in `[fromUs, toUs]` of the profile's clock (V8's monotonic
 * microseconds, the same clock as `process.hrtime` on Linux).
 */
export function summariseCpuProfile(path: string, fromUs: number, toUs: number, top = 20): CpuSummary {
  const prof = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const frame = new Map(prof.nodes.map((n) => [n.id, n.callFrame]));
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  let t = prof.startTime;
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const delta = prof.timeDeltas[i] ?? 0;
    t += delta;
    if (t < fromUs || t > toUs) continue;
    const next = prof.timeDeltas[i + 1] ?? 0;
    const f = frame.get(prof.samples[i]!);
    if (f === undefined) continue;
    const file = f.url === '' ? '(native)' : f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:');
    const fn = `${f.functionName === '' ? '(anonymous)' : f.functionName} ${file}:${f.lineNumber + 1}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + next);
    byFile.set(file, (byFile.get(file) ?? 0) + next);
    total += next;
  }
  const ms = (us: number): number => Math.round(us / 100) / 10;
  return {
    sampledMs: ms(total),
    top: [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, us]) => ({ fn, ms: ms(us), percent: Math.round((us / Math.max(1, total)) * 1000) / 10 })),
    byFile: [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([file, us]) => ({ file, ms: ms(us) })),
  };
}

export function cpuTable(label: string, c: CpuSummary): string {
  return [
    `${label}: CPU profile, ${c.sampledMs} ms sampled; self time by function`,
    ...c.top.map((t) => `  ${String(t.ms).padStart(7)} ms ${String(t.percent).padStart(5)} %  ${t.fn}`),
    `  by file: ${c.byFile.map((f) => `${f.file} ${f.ms}`).join(', ')}`,
  ].join('\n');
}

/** The newest `.cpuprofile` in `dir` written after `after` (epoch ms). */
export function newestCpuProfile(dir: string, after: number): string | undefined {
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).mtimeMs >= after)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}
