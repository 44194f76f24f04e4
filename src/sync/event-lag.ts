/** Where a change came from. */
export type ChangeSource = 'ovsdb' | 'xapi';

/**
 * How far the database lags behind what happened: from the first change of a source that a pass took
 * in, to the end of that pass. A failed pass hands its start times back, so the next one that applies
 * the changes reports the whole lag. Times are `performance.now()` milliseconds.
 */
export class EventLag {
  /** When the oldest change not yet covered by a pass arrived, per source. */
  private readonly changedSince: Record<ChangeSource, number | undefined> = { ovsdb: undefined, xapi: undefined };
  /** `changedSince` as the running pass took it over. */
  private passSince: Record<ChangeSource, number | undefined> = { ovsdb: undefined, xapi: undefined };

  /** A change arrived from `source`. */
  changed(source: ChangeSource): void {
    this.changedSince[source] ??= performance.now();
  }

  /** A pass starts: it covers every change so far. */
  passStarted(): void {
    this.passSince = { ...this.changedSince };
    this.changedSince.ovsdb = undefined;
    this.changedSince.xapi = undefined;
  }

  /** The pass ended; when it `applied` its changes, `report` receives each source's lag in seconds. */
  passEnded(applied: boolean, report: (source: ChangeSource, seconds: number) => void): void {
    const now = performance.now();
    for (const source of ['ovsdb', 'xapi'] as const) {
      const since = this.passSince[source];
      if (since === undefined) continue;
      if (applied) report(source, (now - since) / 1000);
      else this.changedSince[source] = Math.min(since, this.changedSince[source] ?? since);
    }
    this.passSince = { ovsdb: undefined, xapi: undefined };
  }
}
