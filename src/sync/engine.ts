import type { Logger } from 'pino';
import { describeError, isCodedError } from '../errors.js';
import { createFailureSummarizer, type FailureSummarizer } from '../log.js';
import type { OvsdbClientState } from '../ovsdb/client.js';
import { changeSetTransactions } from '../ovsdb/changeset-ops.js';
import type { RowChange as ReplicaRowChange } from '../ovsdb/replica.js';
import type { ReconcileResult, ReconcileWarning } from '../reconcile/changeset.js';
import { DirtyTracker } from '../reconcile/dirty-tracker.js';
import { reconcileAll, reconcileDirty } from '../reconcile/row-selection.js';
import { ReconcileScheduler, type PassOutcome } from './scheduler.js';
import type { SystemFacts } from '../reconcile/views.js';
import type { TransactionOutcome } from '../outcomes.js';
import { isTransient } from '../retry.js';
import type { BackoffPolicy } from '../time/backoff.js';
import { realClock, type Clock } from '../time/clock.js';
import type { XapiChange } from '../xapi/cache.js';
import type { XapiWatcherPhase } from '../xapi/watcher.js';
import { EventLag } from './event-lag.js';
import { OwnWrites } from './own-writes.js';
import { ReplicaOvsdbView } from './ovsdb-view.js';
import { countKeys, describeChanges, emptyResult, firstFailure, holdPendingRows, plural, type PassReport, type PassResult } from './pass-report.js';
import type { OvsdbPort, XapiPort } from './ports.js';
import { CacheXapiView } from './xapi-view.js';

/** Hooks for metrics; every one optional so tests and `--once` can ignore them. */
export interface SyncObserver {
  passFinished?(report: PassReport): void;
  /**
   * Seconds from the first change of a source (an OVSDB update or an XAPI event) that a pass took in,
   * to the end of that pass: how far the database lags behind what happened.
   */
  eventLag?(source: 'ovsdb' | 'xapi', seconds: number): void;
  passStarted?(): void;
  transaction?(outcome: TransactionOutcome): void;
}

export interface SyncEngineOptions {
  readonly ovsdb: OvsdbPort;
  readonly watcher: XapiPort;
  readonly logger: Logger;
  /** Current facts (inventory + config overrides); a reload calls `factsChanged()`. */
  readonly facts: () => SystemFacts;
  /** Read at every pass (reloadable). */
  readonly dryRun: () => boolean;
  /** Periodic full resync (docs/design.md §4.4; default 10 min). 0 disables it. */
  readonly resyncIntervalMs: number;
  readonly observer?: SyncObserver;
  /** Delays between failed passes (the daemon's `retryMaxDelayMs` caps them); default `DEFAULT_BACKOFF`. */
  readonly backoff?: BackoffPolicy;
  readonly clock?: Clock;
  /** At most this many rows are named in the one log line per pass (the count is always logged). */
  readonly maxRowsLogged?: number;
  /**
   * A pass writes its changes as pipelined transactions of at most this many rows (default
   * `DEFAULT_ROWS_PER_TRANSACTION`; 0 = one transaction whatever its size).
   */
  readonly rowsPerTransaction?: number;
}

/** Chunk size of a large pass's write (docs/ovsdb.md §7: the cold start's figures). */
export const DEFAULT_ROWS_PER_TRANSACTION = 250;

export interface SyncStatus {
  readonly ovsdb: OvsdbClientState;
  readonly xapi: XapiWatcherPhase;
  readonly xapiSynced: boolean;
  readonly converged: boolean;
  readonly passes: number;
  readonly lastPass: PassReport | undefined;
  readonly lastPassAt: Date | undefined;
  readonly lastError: string | undefined;
  readonly rows: { readonly bridges: number; readonly interfaces: number };
  readonly warnings: number;
}

const COMMENT = 'ovs-xapi-sync: Updating records from XAPI';

/**
 * Joins the OVSDB replica, the XAPI watcher and the pure reconciler (docs/design.md §4). Triggers (replica
 * changes, XAPI events, reconnects, the resync timer, flush-cache) only mark rows dirty; the
 * `ReconcileScheduler` runs one pass at a time; a pass computes the ChangeSet for the dirty rows and writes it
 * in one transaction, or in pipelined transactions of `rowsPerTransaction` rows when it is larger (nothing
 * when it is empty). A pass any of whose transactions failed gives its dirty rows back and is requeued
 * with backoff.
 *
 * Converged means: the last pass found nothing to write, nothing pending, no XAPI lookup outstanding,
 * and nothing is dirty since.
 */
export class SyncEngine {
  private readonly o: SyncEngineOptions;
  private readonly log: Logger;
  private readonly tracker = new DirtyTracker();
  private readonly ovsView: ReplicaOvsdbView;
  private readonly xapiView: CacheXapiView;
  private readonly loop: ReconcileScheduler;
  private xapiSynced = false;
  private converged = false;
  private passes = 0;
  private lastPass: PassReport | undefined;
  private lastPassAt: Date | undefined;
  private lastError: string | undefined;
  private readonly clock: Clock;
  private resyncTimer: unknown;
  private resyncIntervalMs = 0;
  private readonly warningsSeen = new Map<string, string>();
  private readonly unsubscribe: (() => void)[] = [];
  private passWaiters: (() => void)[] = [];
  private started = false;
  /** A pass that keeps failing the same way is logged once, then summarised, then "recovered". */
  private readonly transientFailures: FailureSummarizer;
  private readonly hardFailures: FailureSummarizer;
  private readonly failingKeys = new Set<string>();
  private readonly lag = new EventLag();
  private readonly ownWrites = new OwnWrites();
  /** The pass's dirty Interface rows, for its report (undefined: a full pass). */
  private passDirtyInterfaces: number | undefined;

  constructor(options: SyncEngineOptions) {
    this.o = options;
    this.log = options.logger;
    this.transientFailures = createFailureSummarizer(options.logger);
    this.hardFailures = createFailureSummarizer(options.logger, { level: 'error' });
    this.ovsView = new ReplicaOvsdbView(this.tracker);
    this.xapiView = new CacheXapiView(options.watcher.cache, () => ({ phase: options.watcher.phase, synced: this.xapiSynced }));
    this.clock = options.clock ?? realClock;
    this.loop = new ReconcileScheduler({ pass: () => this.pass(), backoff: options.backoff, clock: this.clock });
  }

  /** Subscribes to both peers and starts the resync timer. The peers themselves are started by the caller. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const { ovsdb, watcher } = this.o;
    const offChange = ovsdb.on('change', (change) => {
      this.lag.changed('ovsdb');
      this.ovsView.apply(change, this.ownWrites.size > 0 ? (uuid, old, row) => this.ownWrites.matches(uuid, old, row) : undefined);
      this.converged = false;
      this.updateInterest();
      this.loop.trigger();
    });
    const offState = ovsdb.on('state', (state) => {
      this.converged = false;
      if (state === 'monitoring') {
        this.tracker.markAll();
        this.loop.kick();
      }
    });
    const onXapiChange = (change: XapiChange): void => {
      this.xapiChanged(change);
    };
    const onPhase = (phase: XapiWatcherPhase): void => {
      this.xapiPhase(phase);
    };
    watcher.on('change', onXapiChange);
    watcher.on('phase', onPhase);
    this.unsubscribe.push(offChange, offState, () => {
      watcher.off('change', onXapiChange);
      watcher.off('phase', onPhase);
    });
    this.setResyncInterval(this.o.resyncIntervalMs);
    if (ovsdb.replica.ready) this.catchUp();
  }

  /** (Re)arms the periodic full resync; 0 disables it. */
  setResyncInterval(ms: number): void {
    this.cancelResync();
    this.resyncIntervalMs = ms;
    if (this.started && ms > 0) this.armResync();
  }

  private armResync(): void {
    this.resyncTimer = this.clock.setTimeout(() => {
      this.resyncTimer = undefined;
      if (!this.started) return;
      this.armResync();
      this.resync('periodic');
    }, this.resyncIntervalMs);
  }

  private cancelResync(): void {
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
  }

  async stop(): Promise<void> {
    this.started = false;
    this.cancelResync();
    for (const off of this.unsubscribe.splice(0)) off();
    await this.loop.stop();
    this.passEnded();
  }

  /** `flush-cache`: drop XAPI caches and reconcile everything (docs/design.md §7). */
  flushCache(): void {
    this.xapiSynced = false;
    this.o.watcher.flushCache();
    this.tracker.markAll();
    this.converged = false;
    this.loop.kick();
  }

  /** Facts changed (SIGHUP reload): the root row is dirty. */
  factsChanged(): void {
    this.tracker.rootChanged();
    this.converged = false;
    this.loop.trigger();
  }

  /** The safety net of docs/design.md §4.4: re-read the XAPI objects in use and reconcile every row. */
  resync(reason: string): void {
    this.log.debug({ reason }, 'full resync');
    this.o.watcher.requestResync();
    this.tracker.markAll();
    this.converged = false;
    this.loop.trigger();
  }

  get isConverged(): boolean {
    return this.converged;
  }

  /** Readiness as the health endpoint reports it (a `CheckResult` of health/checks.ts). */
  readiness(): { readonly ok: boolean; readonly detail: string } {
    if (this.converged) return { ok: true, detail: `converged after ${this.passes} passes` };
    return { ok: false, detail: this.lastError !== undefined ? `last pass failed: ${this.lastError}` : 'not converged yet' };
  }

  /** Resolves when the next pass ends, however it ends (or when the engine stops): `--once` waits on it. */
  nextPass(): Promise<void> {
    return new Promise((resolve) => this.passWaiters.push(resolve));
  }

  /** Resolves when no pass is running, scheduled or needed. */
  whenIdle(): Promise<void> {
    return this.loop.whenIdle();
  }

  /**
   * Computes the full ChangeSet now without writing (the drift check of `--once --dry-run`, and the
   * convergence check of `--once`). Undefined while the replica is not ready.
   */
  computeAll(): ReconcileResult | undefined {
    if (!this.o.ovsdb.replica.ready) return undefined;
    return reconcileAll(this.ovsView, this.xapiView, this.o.facts());
  }

  status(): SyncStatus {
    return {
      ovsdb: this.o.ovsdb.state,
      xapi: this.o.watcher.phase,
      xapiSynced: this.xapiSynced,
      converged: this.converged,
      passes: this.passes,
      lastPass: this.lastPass,
      lastPassAt: this.lastPassAt,
      lastError: this.lastError,
      rows: { bridges: this.ovsView.bridges.size, interfaces: this.ovsView.interfaces.size },
      warnings: this.warningsSeen.size,
    };
  }

  /** Builds the view from a replica that was already complete before `start()` (e.g. in tests). */
  private catchUp(): void {
    const replica = this.o.ovsdb.replica;
    const tables = new Map<string, Map<string, ReplicaRowChange>>();
    for (const name of ['Open_vSwitch', 'Bridge', 'Interface']) {
      const changes = new Map<string, ReplicaRowChange>();
      for (const [uuid, row] of replica.table(name) ?? []) changes.set(uuid, { kind: 'inserted', row });
      tables.set(name, changes);
    }
    this.ovsView.apply({ resync: true, tables });
    this.updateInterest();
    this.loop.kick();
  }

  private updateInterest(): void {
    const delta = this.tracker.index.takeInterestDelta();
    const size = delta.addVifs.size + delta.removeVifs.size + delta.addVms.size + delta.removeVms.size + delta.addBridges.size + delta.removeBridges.size;
    if (size > 0) this.o.watcher.changeInterest(delta);
  }

  private xapiChanged(change: XapiChange): void {
    this.lag.changed('xapi');
    for (const uuid of change.vifs) this.tracker.vifChanged(uuid);
    for (const uuid of change.vms) this.tracker.vmChanged(uuid);
    for (const bridge of change.networks) this.tracker.networkChanged({ bridge, uuid: this.networkUuid(bridge) });
    if (change.pool) this.tracker.poolChanged();
    if (change.host) this.tracker.hostChanged();
    this.converged = false;
    this.loop.trigger();
  }

  /**
   * The uuid of the network now known for `bridge`, which also reaches bridges that list it in
   * `xs-network-uuids`. A network that went away has none; the bridge named after it is what depended on it.
   */
  private networkUuid(bridge: string): string | undefined {
    const network = this.o.watcher.cache.networkByBridge(bridge);
    return network.state === 'known' ? network.record.uuid : undefined;
  }

  private xapiPhase(phase: XapiWatcherPhase): void {
    if (phase === 'live') this.xapiSynced = true;
    // Singletons and networks change state with the phase (pending/unknown → known/absent).
    this.tracker.hostChanged();
    this.tracker.poolChanged();
    this.converged = false;
    this.loop.trigger();
  }

  private async pass(): Promise<PassOutcome> {
    const started = performance.now();
    this.o.observer?.passStarted?.();
    if (!this.o.ovsdb.replica.ready) {
      // Nothing to do until the monitor reply is applied; the `monitoring` state change kicks us.
      this.passEnded();
      return { outcome: 'done' };
    }
    this.passes += 1;
    // Every echo of the previous pass's write arrived before its replies (docs/ovsdb.md §1); a row
    // whose echo did not come is reconciled again rather than trusted.
    for (const uuid of this.ownWrites.take()) {
      const row = this.ovsView.interfaces.get(uuid);
      if (row !== undefined) this.tracker.interfaceChanged(uuid, row);
    }
    const dirty = this.tracker.take();
    this.passDirtyInterfaces = dirty.all === true ? undefined : [...(dirty.interfaces ?? [])].length;
    this.lag.passStarted();
    let result: ReconcileResult;
    try {
      result = reconcileDirty(this.ovsView, this.xapiView, this.o.facts(), dirty, this.tracker.index);
    } catch (err) {
      // A bug in the pure core must not kill the daemon: keep the rows dirty and report it.
      this.tracker.restore(dirty);
      return this.finish(started, 'failed', emptyResult(), err);
    }
    this.reportWarnings(result.warnings);
    result = holdPendingRows(result);
    if (result.changes.length === 0) {
      // Rows a previous pass left pending are not in this pass's result; their lookups still are.
      this.converged = result.pending.length === 0 && this.tracker.isClean && !this.o.watcher.lookupsOutstanding;
      return this.finish(started, 'converged', result);
    }
    if (this.o.dryRun()) {
      this.log.info({ rows: describeChanges(result.changes, this.o.maxRowsLogged ?? 50), count: result.changes.length }, 'dry run: would change %d %s', result.changes.length, plural(result.changes.length));
      this.converged = false;
      return this.finish(started, 'dry_run', result);
    }
    // Built before the await: an error building the operations is not a failed transaction.
    const failure = firstFailure(await this.commit(result.changes), (outcome) => this.o.observer?.transaction?.(outcome));
    if (failure !== undefined) {
      this.tracker.restore(dirty);
      this.converged = false;
      return this.finish(started, 'failed', result, failure.error);
    }
    this.log.info({ rows: describeChanges(result.changes, this.o.maxRowsLogged ?? 50), count: result.changes.length }, 'updated %d %s', result.changes.length, plural(result.changes.length));
    // The update for our own commit arrived before the reply (same session) and triggered a follow-up
    // pass, which confirms convergence; rows it changed exactly as written are not dirty again (OwnWrites).
    this.converged = false;
    return this.finish(started, 'changed', result);
  }

  /**
   * Sends the pass's transactions, pipelined, and settles once every reply is in (so the next pass
   * never overlaps a chunk still in flight). A separate (non-async) step so that the operations are
   * not held by `pass`'s suspended frame: at 6000 rows they are ~8 MB of objects that stayed reachable
   * until the reply and were promoted to the old generation (heap snapshot, stress-2ms).
   */
  private commit(changes: ReconcileResult['changes']): Promise<PromiseSettledResult<unknown>[]> {
    this.ownWrites.expect(changes);
    const transactions = changeSetTransactions(changes, COMMENT, this.o.rowsPerTransaction ?? DEFAULT_ROWS_PER_TRANSACTION);
    return Promise.allSettled(transactions.map((ops) => this.o.ovsdb.transact(ops)));
  }

  private finish(started: number, kind: PassResult, result: ReconcileResult, error?: unknown): PassOutcome {
    const report: PassReport = {
      result: kind,
      seconds: (performance.now() - started) / 1000,
      rows: result.changes.length,
      changesByKey: countKeys(result.changes),
      pending: result.pending.length,
      unknown: result.unknown.length,
      dirtyInterfaces: this.passDirtyInterfaces,
      error,
    };
    this.passDirtyInterfaces = undefined;
    this.lastPass = report;
    this.lastPassAt = new Date();
    this.o.observer?.passFinished?.(report);
    this.lag.passEnded(error === undefined, (source, seconds) => this.o.observer?.eventLag?.(source, seconds));
    this.passEnded();
    if (error !== undefined) {
      this.lastError = describeError(error);
      const transient = isTransient(error);
      const key = `${transient ? 'transient' : 'hard'}:${isCodedError(error) ? error.code : 'error'}`;
      this.failingKeys.add(key);
      (transient ? this.transientFailures : this.hardFailures).failure(key, 'reconcile pass failed; will retry', { err: this.lastError });
      return { outcome: 'retry', error };
    }
    this.lastError = undefined;
    for (const key of this.failingKeys) {
      const summarizer = key.startsWith('transient:') ? this.transientFailures : this.hardFailures;
      summarizer.recovered(key, 'reconcile passes succeed again');
    }
    this.failingKeys.clear();
    return { outcome: 'done' };
  }

  private passEnded(): void {
    const waiters = this.passWaiters;
    this.passWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Each distinct warning is logged once while it persists, not once per pass. */
  private reportWarnings(warnings: readonly ReconcileWarning[]): void {
    for (const w of warnings) {
      const key = `${w.code}|${w.table}|${w.uuid}`;
      if (this.warningsSeen.get(key) === w.message) continue;
      this.warningsSeen.set(key, w.message);
      this.log.warn({ code: w.code, table: w.table, row: w.name ?? w.uuid }, w.message);
    }
    if (this.warningsSeen.size > 10_000) this.warningsSeen.clear();
  }
}
