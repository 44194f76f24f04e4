import type { OvsdbClient } from '../ovsdb/client.js';
import { xapiCallOutcome } from '../outcomes.js';
import type { SyncObserver } from '../sync/engine.js';
import type { XapiClient } from '../xapi/client.js';
import type { CheckResult } from './checks.js';
import { favourMemory } from './heap-mode.js';
import type { ProgressTracker } from './liveness.js';
import type { Metrics } from './metrics.js';

/**
 * Feeds `metrics` from what the peers report: every XAPI call and re-login, every OVSDB reconnect
 * (a `monitoring` state after the first), and at each scrape the replica and cache sizes and the
 * readiness `checks`. Reconcile passes and transactions come from the engine's observer instead.
 */
export function observePeers(metrics: Metrics, ovsdb: OvsdbClient, xapi: XapiClient, checks: Readonly<Record<string, () => CheckResult>>): void {
  xapi.session.on('call', (ev) => {
    metrics.xapiCall(ev.method, xapiCallOutcome(ev.outcome), ev.durationMs / 1000, ev.outcome === 'ok' ? undefined : ev.outcome);
  });
  xapi.session.on('relogin', () => {
    metrics.xapiRelogin();
  });
  xapi.watcher.on('reissue', () => {
    metrics.xapiEventReissue();
  });
  let monitoredOnce = false;
  ovsdb.on('state', (state) => {
    if (state !== 'monitoring') return;
    if (monitoredOnce) metrics.ovsdbReconnect();
    monitoredOnce = true;
  });
  metrics.onScrape(() => {
    for (const [table, rows] of Object.entries(ovsdb.replica.sizes())) metrics.setReplicaRows(table, rows);
    const cache = xapi.watcher.cache;
    metrics.setXapiCacheEntries('vif', cache.vifs.size);
    metrics.setXapiCacheEntries('vm', cache.vms.size);
    metrics.setXapiCacheEntries('network', cache.networks.size);
    const readiness: Record<string, CheckResult> = {};
    for (const [name, check] of Object.entries(checks)) readiness[name] = check();
    metrics.setReadiness(readiness);
  });
}

/**
 * The engine's observer: passes feed the metrics and the liveness tracker; `afterPass` runs after each.
 * The first pass that finds nothing to write and no answer awaited ends the cold start: then `settled` runs
 * once (by default it switches V8 to favour memory, src/health/heap-mode.ts).
 */
export function observePasses(metrics: Metrics, progress: ProgressTracker, afterPass: () => void, settled: () => void = favourMemory): SyncObserver {
  let coldStartOver = false;
  return {
    passStarted: () => {
      progress.passStarted();
    },
    passFinished: (report) => {
      progress.passFinished();
      if (report.result !== 'not_ready') metrics.observeReconcile(report.result, report.seconds, report.changesByKey);
      if (!coldStartOver && report.result === 'converged' && report.pending === 0) {
        coldStartOver = true;
        settled();
      }
      afterPass();
    },
    eventLag: (source, seconds) => {
      metrics.observeEventLag(source, seconds);
    },
    transaction: (outcome) => {
      metrics.ovsdbTransaction(outcome);
    },
  };
}
