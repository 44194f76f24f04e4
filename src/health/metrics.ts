import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from './prom.js';
import { TRANSACTION_OUTCOMES, type TransactionOutcome, type XapiCallOutcome } from '../outcomes.js';

/**
 * The daemon's Prometheus metrics, behind plain methods so callers need not know prom-client.
 *
 * Naming follows the Prometheus conventions (docs/platform.md §5): one `ovs_xapi_sync_` prefix on
 * our own series only (the standard `process_*` / `nodejs_*` names stay as dashboards expect them),
 * counters end in `_total`, durations are histograms in `_seconds`, build metadata is `_build_info`.
 * Labels are low-cardinality by construction: every free-form label value (XAPI method, XAPI error
 * code, owned key, table, cache name) goes through a `BoundedLabel`, which accepts only identifier-like
 * strings and folds everything past a fixed number of distinct values into `other`. No UUID or
 * OpaqueRef can become a label: they do not match the identifier pattern.
 */

const PREFIX = 'ovs_xapi_sync_';

/** Outcome of one reconcile pass. `dry_run`: changes were computed and logged but not written. */
export type ReconcileResult = 'converged' | 'changed' | 'failed' | 'dry_run';
export const RECONCILE_RESULTS: readonly ReconcileResult[] = ['converged', 'changed', 'failed', 'dry_run'];

/** Where a change that a reconcile applied came from, for the event-lag histogram. */
export type EventSource = 'xapi' | 'ovsdb';

export interface MetricsOptions {
  /** Daemon version for `ovs_xapi_sync_build_info{version}`. */
  readonly version: string;
  /** Register prom-client's default process/nodejs metrics (default true). */
  readonly defaultMetrics?: boolean;
  /** Distinct values allowed per free-form label before folding into `other` (default 200). */
  readonly maxLabelValues?: number;
}

/** Label value used for anything rejected or beyond the cardinality budget. */
export const OTHER_LABEL = 'other';

/** Identifier-like: XAPI method names (`VIF.get_record`), error codes, column/key names, table names. */
const LABEL_PATTERN = /^[A-Za-z_][A-Za-z0-9_.:-]{0,79}$/;
/** Strings that look like UUIDs or OpaqueRefs are never labels even if they match the pattern above. */
const IDENTITY_PATTERN = /[0-9a-f]{8}-[0-9a-f]{4}-|OpaqueRef/i;

/** Admits at most `max` distinct identifier-like values; everything else becomes `other`. */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  value(raw: string): string {
    if (this.seen.has(raw)) return raw;
    if (!LABEL_PATTERN.test(raw) || IDENTITY_PATTERN.test(raw)) return OTHER_LABEL;
    if (this.seen.size >= this.max) return OTHER_LABEL;
    this.seen.add(raw);
    return raw;
  }
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Event lag spans a fast path (ms) up to a periodic resync catching a missed event (minutes). */
const LAG_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

export class Metrics {
  /** Our own registry, never prom-client's global one, so several instances (tests) do not collide. */
  readonly registry: Registry;

  private readonly reconcilePasses: Counter<'result'>;
  private readonly reconcileDuration: Histogram;
  private readonly lastReconcile: Gauge;
  private readonly changesWritten: Counter<'key'>;
  private readonly transactions: Counter<'result'>;
  private readonly xapiCalls: Counter<'method' | 'outcome'>;
  private readonly xapiCallDuration: Histogram<'method'>;
  private readonly xapiErrors: Counter<'code'>;
  private readonly xapiRelogins: Counter;
  private readonly xapiEventReissues: Counter;
  private readonly eventLag: Histogram<'source'>;
  private readonly ovsdbReconnects: Counter;
  private readonly replicaRows: Gauge<'table'>;
  private readonly xapiCacheEntries: Gauge<'cache'>;
  private readonly ready: Gauge;
  private readonly readinessCheck: Gauge<'check'>;

  private readonly methodLabel: BoundedLabel;
  private readonly codeLabel: BoundedLabel;
  private readonly keyLabel: BoundedLabel;
  private readonly tableLabel: BoundedLabel;
  private readonly cacheLabel: BoundedLabel;
  private readonly checkLabel: BoundedLabel;
  private readonly scrapeHooks: (() => void)[] = [];

  /**
   * Records one sample of `nodejs_eventloop_lag_*` (ms late); the liveness heartbeat feeds it, so the
   * metrics add no timer of their own (src/health/prom.ts). A no-op without the default metrics.
   */
  readonly recordEventLoopLag: (lagMs: number) => void = () => undefined;

  constructor(options: MetricsOptions) {
    this.registry = new Registry();
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) this.recordEventLoopLag = collectDefaultMetrics(this.registry);
    const max = options.maxLabelValues ?? 200;
    this.methodLabel = new BoundedLabel(max);
    this.codeLabel = new BoundedLabel(max);
    this.keyLabel = new BoundedLabel(max);
    this.tableLabel = new BoundedLabel(max);
    this.cacheLabel = new BoundedLabel(max);
    this.checkLabel = new BoundedLabel(max);

    new Gauge({
      name: `${PREFIX}build_info`,
      help: 'Build information; the value is always 1.',
      labelNames: ['version'],
      registers,
    }).set({ version: options.version }, 1);

    this.reconcilePasses = new Counter({
      name: `${PREFIX}reconcile_passes_total`,
      help: 'Reconcile passes by result (converged, changed, failed, dry_run).',
      labelNames: ['result'],
      registers,
    });
    for (const result of RECONCILE_RESULTS) this.reconcilePasses.inc({ result }, 0);
    this.reconcileDuration = new Histogram({
      name: `${PREFIX}reconcile_duration_seconds`,
      help: 'Wall time of one reconcile pass, including its transaction.',
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.lastReconcile = new Gauge({
      name: `${PREFIX}last_reconcile_timestamp_seconds`,
      help: 'Unix time at which the last reconcile pass finished.',
      registers,
    });
    this.changesWritten = new Counter({
      name: `${PREFIX}changes_written_total`,
      help: 'Owned fields written to OVSDB, by owned key or column name.',
      labelNames: ['key'],
      registers,
    });
    this.transactions = new Counter({
      name: `${PREFIX}ovsdb_transactions_total`,
      help: 'OVSDB transactions sent, by result.',
      labelNames: ['result'],
      registers,
    });
    for (const result of TRANSACTION_OUTCOMES) this.transactions.inc({ result }, 0);
    this.xapiCalls = new Counter({
      name: `${PREFIX}xapi_calls_total`,
      help: 'XAPI calls by method and outcome.',
      labelNames: ['method', 'outcome'],
      registers,
    });
    this.xapiCallDuration = new Histogram({
      name: `${PREFIX}xapi_call_duration_seconds`,
      help: 'XAPI call round-trip time by method.',
      labelNames: ['method'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.xapiErrors = new Counter({
      name: `${PREFIX}xapi_call_errors_total`,
      help: 'XAPI calls that failed, by XAPI error code (or our transport error code).',
      labelNames: ['code'],
      registers,
    });
    this.xapiRelogins = new Counter({
      name: `${PREFIX}xapi_relogins_total`,
      help: 'XAPI session re-logins (SESSION_INVALID, master change, reconnect).',
      registers,
    });
    this.xapiEventReissues = new Counter({
      name: `${PREFIX}xapi_event_reissues_total`,
      help: 'event.from long-polls abandoned in flight; each stays blocked on the XAPI master until its timeout.',
      registers,
    });
    this.eventLag = new Histogram({
      name: `${PREFIX}event_lag_seconds`,
      help: 'Seconds between an XAPI or OVSDB change and the reconcile pass that applied it.',
      labelNames: ['source'],
      buckets: LAG_BUCKETS,
      registers,
    });
    this.ovsdbReconnects = new Counter({
      name: `${PREFIX}ovsdb_reconnects_total`,
      help: 'OVSDB connections re-established after a loss.',
      registers,
    });
    this.replicaRows = new Gauge({
      name: `${PREFIX}ovsdb_replica_rows`,
      help: 'Rows held in the OVSDB replica, by table.',
      labelNames: ['table'],
      registers,
    });
    this.xapiCacheEntries = new Gauge({
      name: `${PREFIX}xapi_cache_entries`,
      help: 'Entries in the XAPI object caches, by cache.',
      labelNames: ['cache'],
      registers,
    });
    this.ready = new Gauge({
      name: `${PREFIX}ready`,
      help: '1 when every readiness check passes, else 0.',
      registers,
    });
    this.readinessCheck = new Gauge({
      name: `${PREFIX}readiness_check`,
      help: '1 when the named readiness check passes, else 0.',
      labelNames: ['check'],
      registers,
    });
  }

  /** One reconcile pass finished. `changesByKey`: owned key / column name → number of fields written. */
  observeReconcile(
    result: ReconcileResult,
    seconds: number,
    changesByKey: ReadonlyMap<string, number> | Readonly<Record<string, number>> = {},
  ): void {
    this.reconcilePasses.inc({ result });
    if (validAmount(seconds)) this.reconcileDuration.observe(seconds);
    this.lastReconcile.set(Date.now() / 1000);
    const entries: Iterable<readonly [string, number]> = isReadonlyMap(changesByKey)
      ? changesByKey.entries()
      : Object.entries(changesByKey);
    for (const [key, count] of entries) {
      if (validAmount(count) && count > 0) this.changesWritten.inc({ key: this.keyLabel.value(key) }, count);
    }
  }

  ovsdbTransaction(result: TransactionOutcome): void {
    this.transactions.inc({ result });
  }

  /** One XAPI call finished. `errorCode`: the XAPI error code (or our `XAPI_*` code) when it failed. */
  xapiCall(method: string, outcome: XapiCallOutcome, seconds: number, errorCode?: string): void {
    const m = this.methodLabel.value(method);
    this.xapiCalls.inc({ method: m, outcome });
    if (validAmount(seconds)) this.xapiCallDuration.observe({ method: m }, seconds);
    if (outcome !== 'success' && errorCode !== undefined) this.xapiError(errorCode);
  }

  /** Counts an XAPI error by code without a call record (e.g. an event.from failure). */
  xapiError(code: string): void {
    this.xapiErrors.inc({ code: this.codeLabel.value(code) });
  }

  xapiRelogin(): void {
    this.xapiRelogins.inc();
  }

  xapiEventReissue(): void {
    this.xapiEventReissues.inc();
  }

  ovsdbReconnect(): void {
    this.ovsdbReconnects.inc();
  }

  /** Seconds from a change (XAPI event or OVSDB update) to the reconcile that applied it. */
  observeEventLag(source: EventSource, seconds: number): void {
    if (validAmount(seconds)) this.eventLag.observe({ source }, seconds);
  }

  setReplicaRows(table: string, rows: number): void {
    if (validAmount(rows)) this.replicaRows.set({ table: this.tableLabel.value(table) }, rows);
  }

  setXapiCacheEntries(cache: string, entries: number): void {
    if (validAmount(entries)) this.xapiCacheEntries.set({ cache: this.cacheLabel.value(cache) }, entries);
  }

  /** Records the latest readiness evaluation (the health server calls this on /readyz and /metrics). */
  setReadiness(checks: Readonly<Record<string, { readonly ok: boolean }>>): void {
    let all = true;
    for (const [name, result] of Object.entries(checks)) {
      this.readinessCheck.set({ check: this.checkLabel.value(name) }, result.ok ? 1 : 0);
      all &&= result.ok;
    }
    this.ready.set(all ? 1 : 0);
  }

  /**
   * Registers a function run just before each scrape, to pull gauges (replica rows, cache sizes) instead
   * of pushing them on every change. A hook that throws is skipped for that scrape.
   */
  onScrape(hook: () => void): void {
    this.scrapeHooks.push(hook);
  }

  /** The Prometheus text exposition (format 0.0.4) and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    for (const hook of this.scrapeHooks) {
      try {
        hook();
      } catch {
        // A broken gauge source must not cost the whole scrape; its gauge keeps the last value.
      }
    }
    const body = await this.registry.metrics();
    return { contentType: this.registry.contentType, body };
  }
}

function isReadonlyMap(
  value: ReadonlyMap<string, number> | Readonly<Record<string, number>>,
): value is ReadonlyMap<string, number> {
  return value instanceof Map;
}

function validAmount(n: number): boolean {
  return Number.isFinite(n) && n >= 0;
}
