import { ConfigError, describeConfig, loadConfig, packageVersion, PROGRAM_NAME, reloadConfig, type Config, type ConfigSources } from './config/index.js';
import { CommandRegistry, registerDaemonCommands, registerVlogCommands } from './control/commands.js';
import { takeDaemonPidfile } from './control/pidfile.js';
import { boundedWait, ShutdownStack } from './control/shutdown.js';
import { statusLine, statusText } from './control/status.js';
import { UnixctlServer } from './control/unixctl-server.js';
import { describeError } from './errors.js';
import { xapiReadiness } from './health/checks.js';
import { ProgressTracker } from './health/liveness.js';
import { Metrics } from './health/metrics.js';
import { observePasses, observePeers } from './health/observe.js';
import { startHealthServer } from './health/server.js';
import { createLogging, type Logging } from './log.js';
import { OvsdbClient } from './ovsdb/client.js';
import type { InventoryFacts, SystemFacts } from './reconcile/views.js';
import { SyncEngine, type SyncEngineOptions } from './sync/engine.js';
import { readInventory } from './sync/inventory.js';
import { convergeOnce } from './sync/once.js';
import { waitForXapiInit } from './sync/xapi-init.js';
import { SystemdNotifier } from './systemd/notify.js';
import { DEFAULT_BACKOFF } from './time/backoff.js';
import { realClock } from './time/clock.js';
import { createXapiClient, type XapiClient } from './xapi/client.js';

/** Exit codes (docs/design.md §6): 0 ok / converged, 1 failure / not converged, 2 bad option or config. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** How long `--once` waits for each peer before judging with what it has. */
const ONCE_PEER_TIMEOUT_MS = 30_000;

interface Runtime {
  config: Config;
  sources: ConfigSources;
  inventory: InventoryFacts;
}

function systemFacts(rt: Runtime): SystemFacts {
  return {
    inventory: rt.inventory,
    systemId: rt.config.systemId ?? undefined,
    enableStatistics: rt.config.enableStatistics,
    managedKeys: new Set(rt.config.managedKeys),
    neutronPortUuid: rt.config.neutronPortUuid,
  };
}

/** OVSDB client, XAPI client and the engine between them; nothing is started. */
function buildPeers(rt: Runtime, logging: Logging, engine: Pick<SyncEngineOptions, 'resyncIntervalMs' | 'observer'>): { ovsdb: OvsdbClient; xapi: XapiClient; engine: SyncEngine } {
  const config = rt.config;
  const backoff = { ...DEFAULT_BACKOFF, maxMs: config.retryMaxDelayMs };
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
    thisHostUuid: rt.inventory.installationUuid,
    logger: logging.component('xapi'),
    backoff,
  });
  const sync = new SyncEngine({
    ...engine,
    ovsdb,
    watcher: xapi.watcher,
    logger: logging.component('reconcile'),
    facts: () => systemFacts(rt),
    dryRun: () => rt.config.dryRun,
    backoff,
  });
  return { ovsdb, xapi, engine: sync };
}

/** `--once`: one full reconcile; 0 when the database is converged afterwards, 1 when not (docs/design.md §6). */
async function runOnce(rt: Runtime, logging: Logging): Promise<number> {
  const peers = buildPeers(rt, logging, { resyncIntervalMs: 0 });
  const { rootPrefix, database, dryRun } = rt.config;
  const converged = await convergeOnce({ ...peers, log: logging.root, rootPrefix, database, dryRun, timeoutMs: ONCE_PEER_TIMEOUT_MS, clock: realClock });
  return converged ? EXIT_OK : EXIT_FAILURE;
}

/** The daemon proper: runs until SIGTERM/SIGINT or `ovs-appctl exit`. Resolves with the exit code. */
async function runDaemon(rt: Runtime, logging: Logging, argv: readonly string[]): Promise<number> {
  const log = logging.root;
  const version = packageVersion();
  log.info({ version, config: describeConfig(rt.config, rt.sources) }, 'starting');
  // Everything start-up acquires is pushed here; shutdown (or a failed start) stops it in reverse.
  const started = new ShutdownStack(log);
  const notifier = new SystemdNotifier({ logger: logging.component('systemd') });
  started.push('systemd notifier', () => {
    notifier.close();
  });
  if (rt.config.pidfile !== null) {
    try {
      const pidfile = await takeDaemonPidfile(rt.config.pidfile, process.pid, rt.config.unixctl, log);
      if (pidfile !== undefined) started.push('pidfile', () => {
        pidfile.close();
      });
    } catch (err) {
      log.error({ err: describeError(err) }, 'cannot take the pidfile');
      return EXIT_FAILURE;
    }
  }

  const metrics = new Metrics({ version });
  const progress = new ProgressTracker({ expectedIntervalMs: (rt.config.resyncIntervalSec > 0 ? rt.config.resyncIntervalSec : 600) * 1000 });
  const { ovsdb, xapi, engine } = buildPeers(rt, logging, {
    resyncIntervalMs: rt.config.resyncIntervalSec * 1000,
    observer: observePasses(metrics, progress, () => {
      notifier.status(statusLine(engine.status()));
    }),
  });
  const checks = { ovsdb: () => ovsdb.readiness(), xapi: () => xapiReadiness(xapi, rt.config.xapi), reconcile: () => engine.readiness() };
  observePeers(metrics, ovsdb, xapi, checks);

  try {
    if (rt.config.health !== null) {
      const { host, port } = rt.config.health;
      const health = await startHealthServer({ host, port, logger: logging.component('health'), checks, progress: progress.check, metrics });
      started.push('health endpoint', () => health.close());
    }
  } catch (err) {
    log.error({ err: describeError(err) }, 'cannot start the health endpoint');
    await started.stopAll();
    return EXIT_FAILURE;
  }

  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  let shuttingDown = false;
  const shutdown = async (reason: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ reason }, 'stopping');
    notifier.stopping('stopping');
    // docs/design.md §6: exit within 5 s whatever a peer does; the in-flight transaction is finished or abandoned.
    if (await boundedWait(started.stopAll(), rt.config.shutdownTimeoutMs)) log.info('stopped');
    else log.warn('shutdown grace period over; exiting with work abandoned');
    finish(EXIT_OK);
  };

  const registry = new CommandRegistry({ programName: PROGRAM_NAME, version });
  registerVlogCommands(registry, logging);
  registerDaemonCommands(registry, {
    exit: () => setImmediate(() => void shutdown('ovs-appctl exit')),
    flushCache: () => {
      log.info('flush-cache: dropping XAPI caches and reconciling everything');
      engine.flushCache();
    },
    status: () => statusText(engine.status(), { config: rt.config, ovsdb: ovsdb.counters, xapiSessionValid: xapi.session.valid }),
  });
  const control = new UnixctlServer({ path: rt.config.unixctl, registry, logger: logging.component('control') });
  try {
    await control.start();
    started.push('control socket', () => control.close());
  } catch (err) {
    log.error({ err: describeError(err) }, 'cannot open the control socket');
    await started.stopAll();
    return EXIT_FAILURE;
  }

  const signals = {
    SIGTERM: (signal: NodeJS.Signals) => void shutdown(signal),
    SIGINT: (signal: NodeJS.Signals) => void shutdown(signal),
    SIGHUP: () => void reload(rt, logging, argv, engine),
    // Not `{ level }`: that would be a second "level" key beside pino's numeric one in the JSON line.
    SIGUSR2: () => {
      log.info({ logLevel: logging.cycleLevel() }, 'log level changed (SIGUSR2)');
    },
  };
  for (const [name, handler] of Object.entries(signals)) process.on(name, handler);

  // Start order: health first (systemd READY once it listens), then both peers, then the engine (in
  // the same turn: it misses no event). XAPI waits for its init cookie without holding OVSDB monitoring
  // back (docs/design.md §9).
  ovsdb.start();
  started.push('ovsdb', () => ovsdb.close());
  started.push('xapi', () => xapi.close());
  engine.start();
  // The pass in flight may finish within half the grace period; past that, closing OVSDB (stopped
  // after this) abandons its transaction (atomic: all or nothing), so the exit still comes within 5 s.
  started.push('reconcile loop', async () => {
    await boundedWait(engine.stop(), rt.config.shutdownTimeoutMs / 2);
  });
  notifier.ready(statusLine(engine.status()));
  const watchdog = notifier.startWatchdog(progress.isProgressing);
  const xapiInit = new AbortController();
  started.push('XAPI init wait', () => {
    xapiInit.abort();
  });
  void waitForXapiInit({ rootPrefix: rt.config.rootPrefix, logger: log, signal: xapiInit.signal }).then((ok) => {
    if (ok && !shuttingDown) xapi.start(xapiInit.signal);
  });

  const code = await finished;
  watchdog?.stop();
  for (const [name, handler] of Object.entries(signals)) process.off(name, handler);
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
    rt.inventory = (await readInventory(rt.config.rootPrefix)).facts;
    if (next.applied.includes('resyncIntervalSec')) engine.setResyncInterval(rt.config.resyncIntervalSec * 1000);
    engine.factsChanged();
    log.info({ applied: next.applied, needsRestart: next.needsRestart }, 'configuration reloaded (SIGHUP)');
  } catch (err) {
    log.error({ err: describeError(err) }, 'configuration reload failed; keeping the running configuration');
  }
}

/**
 * The composition root (docs/ARCHITECTURE.md §4): argv/config → logger → components → signals. The only module that
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
