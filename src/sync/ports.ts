import type { OvsdbClientState } from '../ovsdb/client.js';
import type { Operation } from '../ovsdb/operations.js';
import type { ReplicaChange, ReplicaRow } from '../ovsdb/replica.js';
import type { XapiCache, XapiChange } from '../xapi/cache.js';
import type { XapiInterestDelta, XapiWatcherPhase } from '../xapi/watcher.js';

/**
 * What the sync engine needs of the OVSDB side, and nothing more: `OvsdbClient` is the production
 * implementation, a few lines of fake are the unit tests' (test/unit/sync/engine.test.ts).
 */
export interface OvsdbPort {
  readonly state: OvsdbClientState;
  /** A complete copy of the monitored tables while `ready` (see OvsdbClient's contract). */
  readonly replica: {
    readonly ready: boolean;
    table(name: string): ReadonlyMap<string, ReplicaRow> | undefined;
  };
  on(event: 'change', listener: (change: ReplicaChange) => void): () => void;
  on(event: 'state', listener: (state: OvsdbClientState) => void): () => void;
  /** One transaction; rejects with a typed error (`transient` says whether a retry may cure it). */
  transact(operations: readonly Operation[]): Promise<unknown>;
}

/** What the sync engine needs of the XAPI side: `XapiWatcher` in production. */
export interface XapiPort {
  readonly cache: XapiCache;
  readonly phase: XapiWatcherPhase;
  /** True while a lookup the engine's interest caused has not been answered. */
  readonly lookupsOutstanding: boolean;
  on(event: 'change', listener: (change: XapiChange) => void): unknown;
  on(event: 'phase', listener: (phase: XapiWatcherPhase) => void): unknown;
  off(event: 'change', listener: (change: XapiChange) => void): unknown;
  off(event: 'phase', listener: (phase: XapiWatcherPhase) => void): unknown;
  changeInterest(delta: XapiInterestDelta): void;
  flushCache(): void;
  requestResync(): void;
}
