import { describeError } from '../errors.js';
import { emptyChange, type XapiChange } from './cache.js';
import { readNetworkFields } from './lookups.js';
import type { NetworkRecord } from './records.js';
import type { WatcherPartOptions } from './watcher-part.js';

export const DEFAULT_CROWDED_NETWORK_VIFS = 1024;
export const DEFAULT_NETWORK_REFRESH_MS = 10_000;

export interface CrowdedNetworksOptions extends WatcherPartOptions {
  /** See `XapiWatcherOptions.crowdedNetworkVifs`. */
  readonly crowdedNetworkVifs?: number | undefined;
  readonly networkRefreshMs?: number | undefined;
  /** Refreshes run only while the view is live. */
  readonly isLive: () => boolean;
  /** What a refresh read of the network followed for `bridge` (`undefined`: XAPI says it is gone). */
  readonly apply: (bridge: string, ref: string, record: NetworkRecord | undefined, change: XapiChange) => void;
  readonly emitChange: (change: XapiChange) => void;
}

/**
 * Networks too large to follow by events: a network's `VIFs` set is pool-wide, so every VIF plugged or
 * unplugged anywhere on a crowded one would send this host the whole list again. Such a network is left
 * out of the subscriptions and its fields are re-read every `networkRefreshMs` instead.
 */
export class CrowdedNetworks {
  private readonly o: CrowdedNetworksOptions;
  private readonly refs = new Set<string>();
  private timer: unknown;
  private stopController = new AbortController();

  constructor(options: CrowdedNetworksOptions) {
    this.o = options;
  }

  has(ref: string): boolean {
    return this.refs.has(ref);
  }

  /** A followed network stops being followed for its bridge (deleted, renamed): no longer refreshed. */
  forget(ref: string): void {
    this.refs.delete(ref);
  }

  /** A followed network's event, listing `vifs` VIFs: a crowded one is refreshed from now on. */
  observe(ref: string, bridge: string, vifs: number): void {
    if (vifs <= (this.o.crowdedNetworkVifs ?? DEFAULT_CROWDED_NETWORK_VIFS) || this.refs.has(ref)) return;
    this.refs.add(ref);
    const refreshSec = this.refreshMs / 1000;
    this.o.logger.info({ bridge, vifs, refreshSec }, 'network lists VIFs of the whole pool: re-read periodically instead of followed by events');
    this.schedule();
  }

  start(): void {
    this.stopController = new AbortController();
    this.schedule();
  }

  stop(): void {
    this.stopController.abort();
    this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private get refreshMs(): number {
    return this.o.networkRefreshMs ?? DEFAULT_NETWORK_REFRESH_MS;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.refs.size === 0 || this.stopController.signal.aborted) return;
    this.timer = this.o.clock.setTimeout(() => {
      void this.refresh().finally(() => {
        this.timer = undefined;
        this.schedule();
      });
    }, this.refreshMs);
  }

  /** Re-reads each crowded network's fields; one XAPI says is gone becomes absent. */
  async refresh(): Promise<void> {
    if (!this.o.isLive()) return;
    const signal = this.stopController.signal;
    const networks = this.o.cache.networks;
    const change = emptyChange();
    await Promise.all(
      [...this.refs].map(async (ref) => {
        const bridge = networks.keyOf(ref);
        if (bridge === undefined) {
          this.refs.delete(ref);
          return;
        }
        try {
          const record = await readNetworkFields(this.o.caller, ref, { signal, retries: 0 });
          const current = networks.get(bridge);
          if (current.state === 'known' && current.record.ref === ref) this.o.apply(bridge, ref, record, change);
        } catch (err) {
          // The event follower notices an unreachable XAPI and resynchronises; the next refresh tries again.
          if (!signal.aborted) this.o.logger.debug({ bridge, err: describeError(err) }, 'network refresh failed');
        }
      }),
    );
    this.o.emitChange(change);
  }
}
