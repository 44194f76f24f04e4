import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Daemon } from '../helpers/host-env.js';

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ; 100 on every Linux ABI Node supports). */
const CLK_TCK = 100;

/** User + system CPU seconds of a process, from `/proc/<pid>/stat` fields 14 and 15. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is parenthesised and may hold spaces: split after its closing paren.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resident set size in MiB, from `VmRSS` of `/proc/<pid>/status`. */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

/** Peak resident set size in MiB (`VmHWM`). */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

/**
 * What RSS a node process has before the daemon holds any data: an empty process with the daemon's V8
 * options, and one that has loaded the daemon's chunk of the bundle (`dist/bin/main-*.js`) without running it.
 * The difference between these and the daemon's RSS is what the daemon's data and work cost.
 */
export async function nodeBaselineRss(nodeArgs: readonly string[], mainModule: string, env: Readonly<Record<string, string>>): Promise<{ emptyMb: number; modulesLoadedMb: number }> {
  const measure = async (code: string): Promise<number> => {
    const child = spawn(process.execPath, [...nodeArgs, '--input-type=module', '-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
    const ready = new Promise<void>((resolve) => child.stdout.once('data', () => { resolve(); }));
    await ready;
    await new Promise((r) => setTimeout(r, 500));
    const mb = rssMb(child.pid ?? -1);
    child.kill('SIGKILL');
    return Math.round(mb * 10) / 10;
  };
  const hold = 'process.stdout.write("up\\n"); setTimeout(() => {}, 60000);';
  return { emptyMb: await measure(hold), modulesLoadedMb: await measure(`await import(${JSON.stringify(pathToFileURL(mainModule).href)}); ${hold}`) };
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * From the daemon's `/metrics`: V8 heap used (MB), reconcile passes so far and their summed wall time
 * (s, transactions included). NaN when unavailable.
 */
export async function daemonMetrics(daemon: Daemon): Promise<{ heapUsedMb: number; passes: number; passSeconds: number }> {
  let text = '';
  try {
    text = await (await fetch(`${await daemon.healthUrl()}/metrics`)).text();
  } catch {
    // NaN figures below.
  }
  const sum = (re: RegExp): number => {
    const hits = [...text.matchAll(re)];
    return hits.length === 0 ? Number.NaN : hits.reduce((t, m) => t + Number(m[1]), 0);
  };
  return {
    heapUsedMb: round(sum(/^nodejs_heap_size_used_bytes (\S+)$/gm) / (1024 * 1024), 1),
    passes: sum(/^ovs_xapi_sync_reconcile_passes_total\{[^}]*\} (\S+)$/gm),
    passSeconds: round(sum(/^ovs_xapi_sync_reconcile_duration_seconds_sum (\S+)$/gm), 3),
  };
}
