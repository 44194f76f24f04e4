import { describeError } from '../errors.js';
import { emptyChange, type ObjectTable, type XapiChange } from './cache.js';
import { markDeleted } from './events.js';
import { DEFAULT_LOOKUP_BATCH_SIZE, existingRefsByUuid } from './lookups.js';
import type { WatcherPartOptions } from './watcher-part.js';

export const DEFAULT_DELETION_CHECK_MS = 60_000;

export interface DeletionAuditOptions extends WatcherPartOptions {
  readonly isLive: () => boolean;
  readonly emitChange: (change: XapiChange) => void;
  readonly lookupBatchSize?: number | undefined;
  /** See `XapiWatcherOptions.deletionCheckMs`. */
  readonly minIntervalMs?: number | undefined;
}

/** How a table's row count moved between two `event.from` answers. */
export interface CountMove {
  readonly moved: boolean;
  readonly dropped: boolean;
}

const STILL: CountMove = { moved: false, dropped: false };

/**
 * xapi keeps only the last 256–511 deleted rows of each table (`Table.remove`,
 * xapi-project/xen-api ocaml/database/db_cache_types.ml:239-258) and reports a `del` only from that
 * queue (`fold_over_deleted`, :269-286): a follower whose token falls behind more deletions than that
 * (a slow or interrupted poll on a busy pool) never hears of some. `valid_ref_counts` counts every
 * table's rows, subscribed or not (ocaml/xapi/xapi_event.ml:724-733), so a drop in the VIF or VM count
 * is the hint that a followed object may be gone: the check then asks which followed objects still
 * exist (`get_all_where` by uuid, refs only) and marks the others deleted, as their `del` would have.
 * Checks run at most once per `minIntervalMs`; the periodic resync catches anything else.
 */
export class DeletionAudit {
  private readonly o: DeletionAuditOptions;
  private counts = new Map<string, number>();
  private timer: unknown;
  private lastCheckAt = Number.NEGATIVE_INFINITY;
  private running: Promise<void> | undefined;
  private stopController = new AbortController();

  constructor(options: DeletionAuditOptions) {
    this.o = options;
  }

  /** After a sync nothing is compared with: the first answer's counts count as a move. */
  reset(): void {
    this.counts = new Map();
  }

  start(): void {
    this.stopController = new AbortController();
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * Takes in an answer's counts and how many `del` events it carried per table; returns how the network
   * count moved. A count that dropped by more than the answer's `del`s (deletions elsewhere in the pool,
   * or ones never reported) schedules a check of the VIFs and VMs followed.
   */
  note(counts: ReadonlyMap<string, number>, dels: ReadonlyMap<string, number>): CountMove {
    const move = (table: string): CountMove => {
      const n = counts.get(table);
      if (n === undefined) return STILL;
      const before = this.counts.get(table);
      this.counts.set(table, n);
      return n === before ? STILL : { moved: true, dropped: before !== undefined && before - n > (dels.get(table) ?? 0) };
    };
    const vifs = move('vif');
    const vms = move('vm');
    if (vifs.dropped || vms.dropped) this.schedule();
    return move('network');
  }

  private schedule(): void {
    if (this.timer !== undefined || this.stopController.signal.aborted) return;
    const wait = Math.max(0, this.lastCheckAt + (this.o.minIntervalMs ?? DEFAULT_DELETION_CHECK_MS) - this.o.clock.now());
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.running !== undefined || !this.o.isLive()) return;
      this.lastCheckAt = this.o.clock.now();
      this.running = this.check().finally(() => {
        this.running = undefined;
      });
    }, wait);
  }

  /** Marks deleted the followed VIFs and VMs XAPI no longer has. */
  async check(): Promise<void> {
    const change = emptyChange();
    try {
      await Promise.all([this.checkTable('VIF', this.o.cache.vifs, change.vifs), this.checkTable('VM', this.o.cache.vms, change.vms)]);
    } catch (err) {
      if (!this.stopController.signal.aborted) this.o.logger.debug({ err: describeError(err) }, 'XAPI deletion check failed; the next resync catches what it would have');
    }
    this.o.emitChange(change);
  }

  private async checkTable<R extends { readonly ref: string; readonly uuid: string }>(cls: 'VIF' | 'VM', table: ObjectTable<R>, changed: Set<string>): Promise<void> {
    const followed = new Map<string, string>();
    for (const key of table.keys()) {
      const e = table.get(key);
      if (e.state === 'known' && !e.deleted) followed.set(key, e.record.ref);
    }
    if (followed.size === 0) return;
    const options = { signal: this.stopController.signal, retries: 0, batchSize: this.o.lookupBatchSize ?? DEFAULT_LOOKUP_BATCH_SIZE };
    const existing = await existingRefsByUuid(this.o.caller, cls, followed.keys(), options);
    for (const [key, ref] of followed) {
      const e = table.get(key);
      // Only the record the question was about: a lookup meanwhile may have replaced it.
      if (existing.has(ref) || e.state !== 'known' || e.record.ref !== ref) continue;
      this.o.logger.info({ class: cls, uuid: key }, 'XAPI object deleted without a del event (its deletion fell out of xapi\'s queue); marked deleted');
      markDeleted(table, key, changed);
    }
  }
}
