import type { Daemon, HostEnv } from '../helpers/host-env.js';
import { coldStartBreakdown, type ColdStartBreakdown } from './phases.js';
import { OvsdbTap, ProcSampler, XapiCallLog } from './timeline.js';
import type { DbWatch } from './watch.js';

export interface TracedColdStart {
  readonly coldStartMs: number;
  readonly breakdown: ColdStartBreakdown;
}

/**
 * A cold start with every witness on (`timeline.ts`): the daemon at debug level, its database
 * connection through the bench's proxy, its CPU and RSS sampled every 20 ms. The proxy costs a hop per
 * message, so the scenario's headline figures come from a second, untraced daemon; this one only says
 * where the time went. The daemon is stopped before this resolves.
 */
export async function tracedColdStart(env: HostEnv, watch: DbWatch, isConverged: () => boolean): Promise<TracedColdStart> {
  const tap = await OvsdbTap.start(env.db.socketPath);
  const xapi = new XapiCallLog(() => env.sim.counters);
  let daemon: Daemon | undefined;
  let procs: ProcSampler | undefined;
  try {
    const spawnAt = performance.now();
    daemon = env.startDaemon({ logLevel: 'debug' });
    procs = new ProcSampler(daemon.pid, env.db.pid);
    const convergedAt = await watch.waitUntil(isConverged, 120_000);
    // The daemon logs its big transaction once the reply is in, which may be after the bench saw it.
    await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('updated ') && typeof l.count === 'number' && l.count > 1, 5_000).catch(() => undefined);
    procs.stop();
    const breakdown = coldStartBreakdown({ spawnAt, convergedAt, logs: daemon.logs, calls: xapi.calls, messages: tap.messages, procs });
    return { coldStartMs: Math.round((convergedAt - spawnAt) * 10) / 10, breakdown };
  } finally {
    procs?.stop();
    xapi.close();
    if (daemon !== undefined) await daemon.stop('SIGTERM');
    await tap.close();
  }
}
