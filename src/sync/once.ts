import type { Logger } from 'pino';
import type { ReconcileResult } from '../reconcile/changeset.js';
import { delay, type Clock } from '../time/clock.js';
import type { XapiClient } from '../xapi/client.js';
import type { SyncEngine } from './engine.js';
import { describeChanges } from './pass-report.js';
import type { OvsdbPort, XapiPort } from './ports.js';
import { waitForXapiInit } from './xapi-init.js';

/**
 * `--once` (docs/design.md §6): starts the peers and the engine, waits for them, judges convergence, stops
 * everything. Every wait is on events (the peers' and the engine's), bounded by one deadline on the
 * clock, so that a peer that never answers costs the timeout and no more.
 */

export interface OnceOptions {
  readonly ovsdb: OvsdbPort & { start(): void; close(): Promise<void> };
  readonly xapi: Pick<XapiClient, 'watcher' | 'start' | 'close'>;
  readonly engine: SyncEngine;
  readonly log: Logger;
  /** Where the XAPI init cookie is (xapi-init.ts). */
  readonly rootPrefix: string;
  /** For the log line when ovsdb-server does not answer. */
  readonly database: string;
  readonly dryRun: boolean;
  /** How long to wait for the peers and for the engine to settle. */
  readonly timeoutMs: number;
  readonly clock: Clock;
}

/** True when the database is converged (nothing to write, nothing pending), false otherwise. */
export async function convergeOnce(o: OnceOptions): Promise<boolean> {
  const { ovsdb, xapi, engine, log, clock } = o;
  const stop = new AbortController();
  const deadline = clock.now() + o.timeoutMs;
  try {
    ovsdb.start();
    const xapiUp = waitForXapiInit({ rootPrefix: o.rootPrefix, logger: log, signal: stop.signal, timeoutMs: o.timeoutMs, clock }).then((ok) => {
      if (ok) xapi.start(stop.signal);
      return ok;
    });
    if (!(await ovsdbReady(ovsdb, clock, deadline))) {
      log.error({ database: o.database }, 'ovsdb-server did not answer: cannot judge convergence');
      return false;
    }
    // In a dry run the engine writes nothing; it runs to keep the XAPI interest in step with the database.
    const reachedXapi = await xapiUp;
    engine.start();
    const result = await untilSettled(engine, xapi.watcher, reachedXapi, clock, deadline);
    return result !== undefined && judgeOnce(result, o.dryRun, log);
  } finally {
    stop.abort();
    await engine.stop();
    await xapi.close();
    await ovsdb.close();
  }
}

/** True when `event` settles before `deadline`, false at the deadline; leaves no timer behind. */
export async function before(event: Promise<unknown>, clock: Clock, deadline: number): Promise<boolean> {
  const timeout = new AbortController();
  try {
    return await Promise.race([
      event.then(() => true),
      delay(clock, Math.max(0, deadline - clock.now()), timeout.signal).then(
        () => false,
        () => false,
      ),
    ]);
  } finally {
    timeout.abort();
  }
}

/** Resolves true once the OVSDB replica is complete, false when `deadline` passes first. */
export async function ovsdbReady(ovsdb: OvsdbPort, clock: Clock, deadline: number): Promise<boolean> {
  if (ovsdb.replica.ready) return true;
  let off: () => void = () => undefined;
  const monitoring = new Promise<void>((resolve) => {
    off = ovsdb.on('state', (state) => {
      if (state === 'monitoring') resolve();
    });
  });
  try {
    return (await before(monitoring, clock, deadline)) && ovsdb.replica.ready;
  } finally {
    off();
  }
}

/**
 * Waits until XAPI lookups have resolved (or XAPI is known to be away, or was never reached: `xapiUp`
 * false) and the engine is idle, then computes the full ChangeSet. Every pass ends in an event (an OVSDB
 * update, an XAPI change or phase, a retry), so between checks it waits for the next pass to end.
 * Undefined when the replica is not ready. At `deadline` it judges with what it has.
 */
export async function untilSettled(engine: SyncEngine, watcher: XapiPort, xapiUp: boolean, clock: Clock, deadline: number): Promise<ReconcileResult | undefined> {
  for (;;) {
    const nextPass = engine.nextPass();
    await engine.whenIdle();
    const result = engine.computeAll();
    if (result !== undefined && isSettled(engine, watcher, xapiUp, result)) return result;
    if (!(await before(nextPass, clock, deadline))) return engine.computeAll();
  }
}

function isSettled(engine: SyncEngine, watcher: XapiPort, xapiUp: boolean, result: ReconcileResult): boolean {
  const xapiSettled = !xapiUp || watcher.phase === 'live' || watcher.phase === 'down';
  const judged = engine.isConverged || engine.status().lastPass?.result === 'dry_run' || result.changes.length === 0;
  return xapiSettled && result.pending.length === 0 && judged;
}

/**
 * The verdict of `--once` on the settled `result`: converged when nothing is left to write and nothing
 * is pending. Logs the drift (dry run) or what is left (otherwise).
 */
export function judgeOnce(result: ReconcileResult, dryRun: boolean, log: Logger): boolean {
  const converged = result.changes.length === 0 && result.pending.length === 0;
  if (dryRun) {
    if (result.changes.length > 0) {
      log.info({ rows: describeChanges(result.changes, 200), count: result.changes.length }, 'drift: %d rows differ from the rules', result.changes.length);
    }
  } else if (!converged) {
    log.warn({ rows: describeChanges(result.changes, 50), pending: result.pending.length }, 'not converged');
  }
  return converged;
}
