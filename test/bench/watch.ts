import { pino } from 'pino';
import { OvsdbClient } from '../../src/ovsdb/client.js';
import type { ReplicaChange } from '../../src/ovsdb/replica.js';

/** Owned keys an Interface row must hold, by row name. */
export type Expectation = ReadonlyMap<string, Readonly<Record<string, string>>>;

interface Waiter {
  readonly done: () => boolean;
  readonly resolve: (at: number) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * The bench's own view of the database: an `OvsdbClient` monitoring Interface names and external_ids
 * (and the Open_vSwitch row), with the number of rows that do not yet hold their expected keys kept up
 * to date incrementally from each replica change. Every timing in the bench ends at the moment this
 * client applied the update that satisfied a condition (`waitUntil` resolves with that
 * `performance.now()`), so the daemon and the raw-transaction floor are measured the same way.
 */
export class DbWatch {
  readonly client: OvsdbClient;
  private expected: Expectation = new Map();
  private readonly wrong = new Set<string>();
  private readonly nameOf = new Map<string, string>();
  private readonly byName = new Map<string, ReadonlyMap<string, string>>();
  private systemId: string | undefined;
  private waiters: Waiter[] = [];

  constructor(remote: string) {
    this.client = new OvsdbClient({
      remote,
      logger: pino({ level: 'silent' }),
      requestTimeoutMs: 120_000,
      // The bench's own clients wait out a server busy for seconds under load rather than reconnect.
      probeIntervalMs: 0,
      tables: { Open_vSwitch: { external_ids: 'string-map' }, Interface: { name: 'string', external_ids: 'string-map' } },
    });
    this.client.on('change', (change) => {
      this.onChange(change);
    });
  }

  async start(): Promise<void> {
    this.client.start();
    await this.waitUntil(() => this.client.replica.ready, 30_000);
  }

  /** Sets what every row must hold; returns the number of rows that do not hold it yet. */
  expect(expected: Expectation): number {
    this.expected = expected;
    this.wrong.clear();
    for (const name of expected.keys()) if (!this.rowOk(name)) this.wrong.add(name);
    return this.wrong.size;
  }

  get wrongRows(): number {
    return this.wrong.size;
  }

  get rootSystemId(): string | undefined {
    return this.systemId;
  }

  externalIds(name: string): ReadonlyMap<string, string> | undefined {
    return this.byName.get(name);
  }

  /** Resolves with the time of the change that made `done()` true (now if it already is). */
  waitUntil(done: () => boolean, timeoutMs: number): Promise<number> {
    if (done()) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        done,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`bench: condition not met within ${timeoutMs} ms (${this.wrong.size} rows still wrong)`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** Whether the row named `name` holds what `expect` asked of it (true for a row not asked about). */
  rowMatches(name: string): boolean {
    return this.rowOk(name);
  }

  private rowOk(name: string): boolean {
    const want = this.expected.get(name);
    if (want === undefined) return true;
    const have = this.byName.get(name);
    if (have === undefined) return false;
    for (const [k, v] of Object.entries(want)) if (have.get(k) !== v) return false;
    return true;
  }

  private onChange(change: ReplicaChange): void {
    const at = performance.now();
    for (const [uuid, row] of change.tables.get('Interface') ?? []) {
      const old = this.nameOf.get(uuid);
      if (old !== undefined) {
        this.byName.delete(old);
        this.nameOf.delete(uuid);
        if (this.expected.has(old)) this.wrong.add(old);
      }
      if (row.kind !== 'deleted') {
        const name = row.row.name as string;
        this.nameOf.set(uuid, name);
        this.byName.set(name, row.row.external_ids as ReadonlyMap<string, string>);
        if (this.rowOk(name)) this.wrong.delete(name);
        else if (this.expected.has(name)) this.wrong.add(name);
      }
    }
    for (const [, row] of change.tables.get('Open_vSwitch') ?? []) {
      this.systemId = row.kind === 'deleted' ? undefined : (row.row.external_ids as ReadonlyMap<string, string>).get('system-id');
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (w.done()) {
        clearTimeout(w.timer);
        w.resolve(at);
      } else {
        this.waiters.push(w);
      }
    }
  }
}
