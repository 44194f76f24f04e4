import { access } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ConfigError, describeConfig, loadConfig, packageVersion, PROGRAM_NAME, reloadConfig, type Config, type ConfigSources } from './config.js';
import { CommandRegistry, registerVlogCommands } from './control/commands.js';
import { createPidfile, PidfileError, type Pidfile } from './control/pidfile.js';
import { UnixctlServer } from './control/unixctl-server.js';
import { describeError } from './errors.js';
import type { CheckResult } from './health/checks.js';
import { ProgressTracker } from './health/liveness.js';
import { Metrics, type TransactionResult, type XapiCallOutcome } from './health/metrics.js';
import { startHealthServer, type HealthServer } from './health/server.js';
import { createLogging, type Logging } from './log.js';
import { OvsdbClient } from './ovsdb/client.js';
import type { InventoryFacts, SystemFacts } from './reconcile/views.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './time/backoff.js';
import { SyncEngine, describeChanges, type PassReport, type SyncObserver } from './sync/engine.js';
import { initCookiePath, readInventory } from './sync/inventory.js';
import { SystemdNotifier } from './systemd/notify.js';
import { createXapiClient, type XapiClient } from './xapi/client.js';

/** Exit codes (DESIGN §4): 0 ok / converged, 1 failure / not converged, 2 bad option or config. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** How long `--once` waits for each peer before judging with what it has. */
const ONCE_PEER_TIMEOUT_MS = 30_000;
const COOKIE_POLL_MS = 1000;

interface Runtime {
  config: Config;
  sources: ConfigSources;
  inventory: InventoryFacts;
}

function systemFacts(rt: Runtime): SystemFacts {
  return { inventory: rt.inventory, systemId: rt.config.systemId ?? undefined, enableStatistics: rt.config.enableStatistics };
}

function backoffFor(config: Config): BackoffPolicy {
  return { ...DEFAULT_BACKOFF, maxMs: config.retryMaxDelayMs };
}

function buildPeers(config: Config, logging: Logging): { ovsdb: OvsdbClient; xapi: XapiClient } {
  const backoff = backoffFor(config);
  const ovsdb = new OvsdbClient({
    remote: config.database,
    logger: logging.component('ovsdb'),
    probeIntervalMs: config.ovsdbProbeIntervalMs,
    requestTimeoutMs: config.ovsdbRequestTimeoutMs,
    maxMessageBytes: config.ovsdbMaxMessageBytes,
    backoff,
  });
  const xapi = createXapiClient({
    url: config.xapi,
    protocol: config.xapiProtocol,
    user: config.xapiUser,
    password: config.xapiPassword,
    caFile: config.xapiCaFile ?? undefined,
    insecure: config.xapiInsecure,
    callTimeoutMs: config.xapiCallTimeoutMs,
    eventTimeoutSec: config.xapiEventTimeoutSec,
    lookupBatchSize: config.xapiLookupBatchSize,
    logger: logging.component('xapi'),
    backoff,
  });
  return { ovsdb, xapi };
}

/**
 * Waits for `<root-prefix>/var/run/xapi_init_complete.cookie` (reference/xapi.md §7: xapi's last
 * start-up step), polling once a second like `xapi-wait-init-complete`. Resolves false when `signal`
 * aborts or `timeoutMs` passes first.
 */
async function waitForXapiInit(rootPrefix: string, log: Logger, signal: AbortSignal, timeoutMs = Infinity): Promise<boolean> {
  const path = initCookiePath(rootPrefix);
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  while (!signal.aborted) {
    try {
      await access(path);
      if (announced) log.info({ path }, 'XAPI init complete');
      return true;
    } catch {
      if (!announced) log.info({ path }, 'waiting for XAPI to complete its start-up');
      announced = true;
    }
    if (Date.now() >= deadline) return false;
    try {
      await sleep(COOKIE_POLL_MS, undefined, { signal });
    } catch {
      return false;
    }
  }
  return false;
}

function transactionResult(error: unknown): TransactionResult {
  const code = (error as { code?: unknown } | undefined)?.code;
  switch (code) {
    case 'OVSDB_OPERATION':
      return 'operation_error';
    case 'OVSDB_RPC_ERROR':
      return 'rpc_error';
    case 'OVSDB_TIMEOUT':
      return 'timeout';
    default:
      return 'connection_lost';
  }
}

function xapiOutcome(outcome: string): XapiCallOutcome {
  if (outcome === 'ok') return 'success';
  if (outcome === 'XAPI_TIMEOUT') return 'timeout';
  if (outcome.startsWith('XAPI_')) return 'transport_error';
  return 'failure';
}

function statusLine(engine: SyncEngine): string {
  const s = engine.status();
  const state = s.converged ? 'converged' : s.lastError !== undefined ? `retrying (${s.lastError})` : 'reconciling';
  return `${state}; ${s.rows.interfaces} interfaces, ${s.rows.bridges} bridges; ovsdb ${s.ovsdb}; xapi ${s.xapi}`;
}

function statusText(engine: SyncEngine, rt: Runtime, ovsdb: OvsdbClient, xapi: XapiClient): string {
  const s = engine.status();
  const last = s.lastPass;
  const lines = [
    `${PROGRAM_NAME} ${packageVersion()}`,
    `ovsdb: ${s.ovsdb} (${rt.config.database}), reconnects ${ovsdb.counters.reconnects}, monitor ${ovsdb.counters.monitorMethod ?? '-'}`,
    `xapi: ${s.xapi}${s.xapiSynced ? '' : ' (not synced)'} (${rt.config.xapi}, ${rt.config.xapiProtocol}), session ${xapi.session.valid ? 'valid' : 'not valid'}`,
    `rows: ${s.rows.bridges} bridges, ${s.rows.interfaces} interfaces`,
    `reconcile: ${s.converged ? 'converged' : 'not converged'}, ${s.passes} passes`,
    last === undefined
      ? 'last pass: none yet'
      : `last pass: ${last.result} at ${s.lastPassAt?.toISOString() ?? '-'} in ${(last.seconds * 1000).toFixed(2)} ms, ${last.rows} rows changed, ${last.pending} pending, ${last.unknown} using fallbacks`,
    `last error: ${s.lastError ?? 'none'}`,
    `warnings: ${s.warnings}`,
    `dry run: ${rt.config.dryRun ? 'yes' : 'no'}`,
  ];
  return lines.join('\n');
}

/** `--once`: one full reconcile; 0 when the database is converged afterwards, 1 when not (DESIGN §4). */
async function runOnce(rt: Runtime, logging: Logging): Promise<number> {
  const log = logging.root;
  const { ovsdb, xapi } = buildPeers(rt.config, logging);
  const engine = new SyncEngine({
    ovsdb,
    watcher: xapi.watcher,
    logger: logging.component('reconcile'),
    facts: () => systemFacts(rt),
    dryRun: () => rt.config.dryRun,
    resyncIntervalMs: 0,
    backoff: backoffFor(rt.config),
  });
  const stop = new AbortController();
  const deadline = Date.now() + ONCE_PEER_TIMEOUT_MS;
  try {
    ovsdb.start();
    const cookie = waitForXapiInit(rt.config.rootPrefix, log, stop.signal, ONCE_PEER_TIMEOUT_MS).then((ok) => {
      if (ok) xapi.start(stop.signal);
      return ok;
    });
    while (!ovsdb.replica.ready && Date.now() < deadline) await sleep(20);
    if (!ovsdb.replica.ready) {
      log.error({ database: rt.config.database }, 'ovsdb-server did not answer: cannot judge convergence');
      return EXIT_FAILURE;
    }
    const xapiUp = await cookie;
    if (rt.config.dryRun) {
      // Start the engine only to keep the XAPI interest in step with the database; it writes nothing.
      engine.start();
      const result = await settle(engine, xapi, xapiUp, deadline);
      if (result === undefined) return EXIT_FAILURE;
      if (result.changes.length > 0) {
        log.info({ rows: describeChanges(result.changes, 200), count: result.changes.length }, 'drift: %d rows differ from the rules', result.changes.length);
      }
      return result.changes.length === 0 && result.pending.length === 0 ? EXIT_OK : EXIT_FAILURE;
    }
    engine.start();
    const result = await settle(engine, xapi, xapiUp, deadline);
    if (result === undefined) return EXIT_FAILURE;
    if (result.changes.length > 0 || result.pending.length > 0) {
      log.warn({ rows: describeChanges(result.changes, 50), pending: result.pending.length }, 'not converged');
      return EXIT_FAILURE;
    }
    return EXIT_OK;
  } finally {
    stop.abort();
    await engine.stop();
    await xapi.close();
    await ovsdb.close();
  }
}

/**
 * Waits until XAPI lookups have resolved (or XAPI is known to be away) and the engine is idle, then
 * computes the full ChangeSet. Bounded by `deadline`.
 */
async function settle(engine: SyncEngine, xapi: XapiClient, xapiUp: boolean, deadline: number) {
  for (;;) {
    await engine.whenIdle();
    const result = engine.computeAll();
    const xapiSettled = !xapiUp || xapi.watcher.phase === 'live' || xapi.watcher.phase === 'down';
    if (result !== undefined && xapiSettled && result.pending.length === 0 && (engine.isConverged || engine.status().lastPass?.result === 'dry_run' || result.changes.length === 0)) {
      return result;
    }
    if (Date.now() >= deadline) return result;
    await sleep(25);
  }
}

/** Resolves when `work` settles or after `ms`, whichever comes first (`work` keeps running). */
function boundedWait(work: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    work.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** The daemon proper: runs until SIGTERM/SIGINT or `ovs-appctl exit`. Resolves with the exit code. */
async function runDaemon(rt: Runtime, logging: Logging, argv: readonly string[]): Promise<number> {
  const log = logging.root;
  const version = packageVersion();
  log.info({ version, config: describeConfig(rt.config, rt.sources) }, 'starting');

  let pidfile: Pidfile | undefined;
  if (rt.config.pidfile !== null) {
    try {
      pidfile = await createPidfile({ path: rt.config.pidfile, pid: process.pid });
    } catch (err) {
      if (!(err instanceof PidfileError && err.code === 'PIDFILE_NO_LOCKING')) {
        log.error({ err: describeError(err) }, 'cannot take the pidfile');
        return EXIT_FAILURE;
      }
      // Synchronising matters more than the name form of ovs-appctl: run on, and say what is lost.
      log.error(
        { err: describeError(err), controlSocket: rt.config.unixctl },
        'no pidfile: fcntl locking is unavailable, so `ovs-appctl -t ovs-xapi-sync` will not find this daemon; use `ovs-appctl -t <control socket>`',
      );
    }
  }

  const metrics = new Metrics({ version });
  const { ovsdb, xapi } = buildPeers(rt.config, logging);
  const expectedPassMs = (rt.config.resyncIntervalSec > 0 ? rt.config.resyncIntervalSec : 600) * 1000;
  const progress = new ProgressTracker({ expectedIntervalMs: expectedPassMs });
  const notifier = new SystemdNotifier({ logger: logging.component('systemd') });

  const observer: SyncObserver = {
    passStarted: () => {
      progress.passStarted();
    },
    passFinished: (report: PassReport) => {
      progress.passFinished();
      if (report.result !== 'not_ready') metrics.observeReconcile(report.result, report.seconds, report.changesByKey);
      notifier.status(statusLine(sync));
    },
    eventLag: (source, seconds) => {
      metrics.observeEventLag(source, seconds);
    },
    transaction: (outcome, error) => {
      metrics.ovsdbTransaction(outcome === 'committed' ? 'committed' : transactionResult(error));
    },
  };
  const sync: SyncEngine = new SyncEngine({
    ovsdb,
    watcher: xapi.watcher,
    logger: logging.component('reconcile'),
    facts: () => systemFacts(rt),
    dryRun: () => rt.config.dryRun,
    resyncIntervalMs: rt.config.resyncIntervalSec * 1000,
    backoff: backoffFor(rt.config),
    observer,
  });

  xapi.session.on('call', (ev) => {
    metrics.xapiCall(ev.method, xapiOutcome(ev.outcome), ev.durationMs / 1000, ev.outcome === 'ok' ? undefined : ev.outcome);
  });
  xapi.session.on('relogin', () => {
    metrics.xapiRelogin();
  });
  let monitoredOnce = false;
  ovsdb.on('state', (state) => {
    if (state !== 'monitoring') return;
    if (monitoredOnce) metrics.ovsdbReconnect();
    monitoredOnce = true;
  });

  const checks = {
    ovsdb: (): CheckResult =>
      ovsdb.state === 'monitoring' && ovsdb.replica.ready
        ? { ok: true, detail: `monitoring ${rt.config.database}` }
        : { ok: false, detail: `ovsdb-server ${ovsdb.state} (${rt.config.database})` },
    xapi: (): CheckResult =>
      xapi.session.valid && xapi.watcher.phase === 'live'
        ? { ok: true, detail: 'session valid, following events' }
        : { ok: false, detail: `XAPI ${xapi.watcher.phase}, session ${xapi.session.valid ? 'valid' : 'not valid'} (${rt.config.xapi})` },
    reconcile: (): CheckResult => {
      const s = sync.status();
      if (s.converged) return { ok: true, detail: `converged after ${s.passes} passes` };
      return { ok: false, detail: s.lastError !== undefined ? `last pass failed: ${s.lastError}` : 'not converged yet' };
    },
  };
  metrics.onScrape(() => {
    for (const [table, rows] of Object.entries(ovsdb.replica.sizes())) metrics.setReplicaRows(table, rows);
    metrics.setXapiCacheEntries('vif', xapi.watcher.cache.vifs.size);
    metrics.setXapiCacheEntries('vm', xapi.watcher.cache.vms.size);
    metrics.setXapiCacheEntries('network', xapi.watcher.cache.networks.size);
    metrics.setReadiness({ ovsdb: checks.ovsdb(), xapi: checks.xapi(), reconcile: checks.reconcile() });
  });

  let health: HealthServer | undefined;
  if (rt.config.health !== null) {
    try {
      health = await startHealthServer({
        host: rt.config.health.host,
        port: rt.config.health.port,
        logger: logging.component('health'),
        checks,
        progress: progress.check,
        metrics,
      });
    } catch (err) {
      log.error({ err: describeError(err) }, 'cannot start the health endpoint');
      pidfile?.close();
      return EXIT_FAILURE;
    }
  }

  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const stopController = new AbortController();
  let shuttingDown = false;
  let control: UnixctlServer | undefined = undefined;

  const shutdown = async (reason: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ reason }, 'stopping');
    notifier.stopping('stopping');
    // DESIGN §4: exit within 5 s whatever a peer does; the in-flight transaction is finished or abandoned.
    const giveUp = setTimeout(() => {
      log.warn('shutdown grace period over; exiting with work abandoned');
      finish(EXIT_OK);
    }, rt.config.shutdownTimeoutMs);
    giveUp.unref();
    stopController.abort();
    const steps: [string, () => Promise<void> | void][] = [
      // The pass in flight may finish within half the grace period; past that, closing OVSDB below
      // abandons its transaction (atomic: all or nothing), so the exit still comes within the 5 s.
      ['reconcile loop', () => boundedWait(sync.stop(), rt.config.shutdownTimeoutMs / 2)],
      ['control socket', () => control?.close()],
      ['xapi', () => xapi.close()],
      ['ovsdb', () => ovsdb.close()],
      ['health endpoint', () => health?.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        log.warn({ err: describeError(err) }, `error while stopping the ${name}`);
      }
    }
    pidfile?.close();
    notifier.close();
    clearTimeout(giveUp);
    log.info('stopped');
    finish(EXIT_OK);
  };

  const registry = new CommandRegistry({ programName: PROGRAM_NAME, version });
  registerVlogCommands(registry, logging);
  registry.register('exit', '', 0, 0, () => {
    setImmediate(() => void shutdown('ovs-appctl exit'));
    return '';
  });
  registry.register('flush-cache', '', 0, 0, () => {
    log.info('flush-cache: dropping XAPI caches and reconciling everything');
    sync.flushCache();
    return '';
  });
  registry.register('status', '', 0, 0, () => statusText(sync, rt, ovsdb, xapi));
  const controlServer = new UnixctlServer({ path: rt.config.unixctl, registry, logger: logging.component('control') });
  try {
    await controlServer.start();
    control = controlServer;
  } catch (err) {
    log.error({ err: describeError(err) }, 'cannot open the control socket');
    await health?.close();
    pidfile?.close();
    return EXIT_FAILURE;
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    void shutdown(signal);
  };
  const onHangup = (): void => {
    void reload(rt, logging, argv, sync);
  };
  const onUsr2 = (): void => {
    const level = logging.cycleLevel();
    // Not `{ level }`: that would be a second "level" key beside pino's numeric one in the JSON line.
    log.info({ logLevel: level }, 'log level changed (SIGUSR2)');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHangup);
  process.on('SIGUSR2', onUsr2);

  // Start order: health first (systemd READY once it listens), then the loop, then both peers. XAPI
  // waits for its init cookie without holding OVSDB monitoring back (DESIGN §4 Start-up).
  sync.start();
  ovsdb.start();
  notifier.ready(statusLine(sync));
  const watchdog = notifier.startWatchdog(progress.isProgressing);
  void waitForXapiInit(rt.config.rootPrefix, log, stopController.signal).then((ok) => {
    if (ok && !shuttingDown) xapi.start(stopController.signal);
  });

  const code = await finished;
  watchdog?.stop();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  process.off('SIGHUP', onHangup);
  process.off('SIGUSR2', onUsr2);
  return code;
}

/** SIGHUP: re-read environment, config file and inventory; apply what can change at runtime. */
async function reload(rt: Runtime, logging: Logging, argv: readonly string[], engine: SyncEngine): Promise<void> {
  const log = logging.root;
  try {
    const next = reloadConfig(rt.config, rt.sources, { argv, env: process.env, pid: process.pid });
    rt.config = next.config;
    rt.sources = next.sources;
    if (next.applied.includes('logLevel')) logging.setLevel(rt.config.logLevel);
    const inventory = await readInventory(rt.config.rootPrefix);
    rt.inventory = inventory.facts;
    if (next.applied.includes('resyncIntervalSec')) engine.setResyncInterval(rt.config.resyncIntervalSec * 1000);
    engine.factsChanged();
    log.info({ applied: next.applied, needsRestart: next.needsRestart }, 'configuration reloaded (SIGHUP)');
  } catch (err) {
    log.error({ err: describeError(err) }, 'configuration reload failed; keeping the running configuration');
  }
}

/**
 * The composition root (DESIGN §3): argv/config → logger → components → signals. The only module that
 * touches `process` besides the bin shim. Resolves with the exit code; never throws.
 */
export async function main(argv: readonly string[]): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig({ argv, env: process.env, pid: process.pid });
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : describeError(err);
    process.stderr.write(`${PROGRAM_NAME}: ${message}\n`);
    return EXIT_USAGE;
  }
  if (loaded.kind !== 'run') {
    process.stdout.write(loaded.text.endsWith('\n') ? loaded.text : `${loaded.text}\n`);
    return EXIT_OK;
  }
  const logging = createLogging({ level: loaded.config.logLevel, journaldPrefix: loaded.config.logJournaldPrefix });
  const inventory = await readInventory(loaded.config.rootPrefix);
  if (inventory.error !== undefined) logging.root.debug({ err: inventory.error }, 'no xensource-inventory');
  const rt: Runtime = { config: loaded.config, sources: loaded.sources, inventory: inventory.facts };
  try {
    return loaded.config.once ? await runOnce(rt, logging) : await runDaemon(rt, logging, argv);
  } catch (err) {
    logging.root.fatal({ err: describeError(err) }, 'unexpected failure');
    return EXIT_FAILURE;
  }
}
