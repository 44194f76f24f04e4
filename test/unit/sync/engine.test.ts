import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { OvsdbClientState } from '../../../src/ovsdb/client.js';
import { OvsdbError } from '../../../src/ovsdb/errors.js';
import type { Operation } from '../../../src/ovsdb/operations.js';
import type { ReplicaChange, ReplicaRow } from '../../../src/ovsdb/replica.js';
import type { TransactionOutcome } from '../../../src/outcomes.js';
import { SyncEngine, type SyncEngineOptions } from '../../../src/sync/engine.js';
import type { PassReport } from '../../../src/sync/pass-report.js';
import type { OvsdbPort, XapiPort } from '../../../src/sync/ports.js';
import { XapiCache, type XapiChange } from '../../../src/xapi/cache.js';
import type { XapiInterestDelta, XapiWatcherPhase } from '../../../src/xapi/watcher.js';
import { ManualClock } from '../../helpers/manual-clock.js';

/**
 * The engine's OVSDB port (`src/sync/ports.ts`) as a script: a replica the test fills, and a transact the
 * test answers. It stands in for our client, not for ovsdb-server: the integration tests run the engine
 * against the real server.
 */
class ScriptedOvsdbPort implements OvsdbPort {
  state: OvsdbClientState = 'monitoring';
  readonly tables = new Map<string, Map<string, ReplicaRow>>([
    ['Open_vSwitch', new Map()],
    ['Bridge', new Map()],
    ['Interface', new Map()],
  ]);
  readonly replica = { ready: true, table: (name: string) => this.tables.get(name) };
  readonly sent: Operation[][] = [];
  /** What the next transactions do: resolve (default, or `undefined` in the list) or reject with the error. */
  failWith: (Error | undefined)[] = [];
  private readonly events = new EventEmitter();

  on(event: 'change' | 'state', listener: ((change: ReplicaChange) => void) | ((state: OvsdbClientState) => void)): () => void {
    this.events.on(event, listener);
    return () => this.events.off(event, listener);
  }

  transact(operations: readonly Operation[]): Promise<unknown> {
    this.sent.push([...operations]);
    const error = this.failWith.shift();
    return error === undefined ? Promise.resolve([]) : Promise.reject(error);
  }

  /** A row as the server would report it, applied to the replica and announced. */
  upsert(table: string, row: ReplicaRow): void {
    const rows = this.tables.get(table)!;
    const old = rows.get(row._uuid);
    rows.set(row._uuid, row);
    const change = old === undefined ? { kind: 'inserted' as const, row } : { kind: 'modified' as const, row, old };
    this.events.emit('change', { resync: false, tables: new Map([[table, new Map([[row._uuid, change]])]]) });
  }
}

/** The XAPI side as the engine sees it: a cache, a phase, and a record of what the engine asked. */
class ScriptedXapiPort extends EventEmitter<{ change: [XapiChange]; phase: [XapiWatcherPhase] }> implements XapiPort {
  readonly cache = new XapiCache();
  phase: XapiWatcherPhase = 'idle';
  lookupsOutstanding = false;
  readonly interest: XapiInterestDelta[] = [];
  resyncs = 0;
  flushes = 0;

  changeInterest(delta: XapiInterestDelta): void {
    this.interest.push(delta);
  }
  flushCache(): void {
    this.flushes++;
  }
  requestResync(): void {
    this.resyncs++;
  }
  setPhase(phase: XapiWatcherPhase): void {
    this.phase = phase;
    this.emit('phase', phase);
  }
}

const ROOT = '00000000-0000-4000-8000-000000000001';
/** The uuid of the i-th Interface row of a test. */
const IF = (i: number): string => `00000000-0000-4000-9000-${String(i).padStart(12, '0')}`;
const rootRow = (ext: Record<string, string> = {}): ReplicaRow => ({ _uuid: ROOT, external_ids: new Map(Object.entries(ext)), other_config: new Map() });

function setup(options: Partial<SyncEngineOptions> = {}) {
  const clock = new ManualClock();
  const ovsdb = new ScriptedOvsdbPort();
  const xapi = new ScriptedXapiPort();
  const reports: PassReport[] = [];
  const transactions: TransactionOutcome[] = [];
  ovsdb.tables.get('Open_vSwitch')!.set(ROOT, rootRow());
  const engine = new SyncEngine({
    ovsdb,
    watcher: xapi,
    logger: pino({ level: 'silent' }),
    facts: () => ({ inventory: {}, systemId: 'host-a', enableStatistics: false }),
    dryRun: () => false,
    resyncIntervalMs: 0,
    clock,
    observer: {
      passFinished: (report) => reports.push(report),
      transaction: (outcome) => transactions.push(outcome),
    },
    ...options,
  });
  return { clock, ovsdb, xapi, engine, reports, transactions };
}

/** The ops of one transaction, as text: enough to see which keys it writes. */
const text = (ops: readonly Operation[]): string => JSON.stringify(ops);

describe('SyncEngine behind narrow ports (fake OVSDB and XAPI sides, manual clock)', () => {
  it('writes what the rules want in one transaction, then converges once the update for it arrives', async () => {
    const { clock, ovsdb, engine, reports, transactions } = setup();
    engine.start();
    await clock.tick();
    expect(ovsdb.sent).toHaveLength(1);
    expect(text(ovsdb.sent[0]!)).toContain('"system-id","host-a"');
    expect(transactions).toEqual(['committed']);
    expect(engine.readiness().ok).toBe(false);

    ovsdb.upsert('Open_vSwitch', rootRow({ 'system-id': 'host-a', 'xs-system-uuid': 'host-a' }));
    await clock.tick();
    await engine.whenIdle();
    expect(ovsdb.sent).toHaveLength(1);
    expect(reports.at(-1)?.result).toBe('converged');
    expect(engine.readiness()).toEqual({ ok: true, detail: `converged after ${reports.length} passes` });
    await engine.stop();
  });

  it('retries a failed transaction with the backoff it was given (the daemon passes retryMaxDelayMs)', async () => {
    const backoff = { initialMs: 100, maxMs: 300, factor: 2, jitter: 0 };
    const { clock, ovsdb, engine, transactions } = setup({ backoff });
    const lost = (): OvsdbError => new OvsdbError('OVSDB_CONNECTION_CLOSED', 'connection lost before the reply');
    ovsdb.failWith = [lost(), lost(), lost(), lost()];
    engine.start();
    await clock.tick();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect(ovsdb.sent).toHaveLength(i + 1);
      delays.push(clock.nextDueAt()! - clock.now());
      await clock.advance(delays[i]!);
    }
    expect(delays).toEqual([100, 200, 300, 300]);
    expect(transactions).toEqual(['connection_lost', 'connection_lost', 'connection_lost', 'connection_lost', 'committed']);
    expect(engine.readiness()).toEqual({ ok: false, detail: 'not converged yet' });
    await engine.stop();
    expect(clock.pending).toBe(0);
  });

  it('labels each failed transaction with the one outcome mapping', async () => {
    const { clock, ovsdb, engine, transactions } = setup({ backoff: { initialMs: 10, maxMs: 10, factor: 1, jitter: 0 } });
    ovsdb.failWith = [new OvsdbError('OVSDB_PROTOCOL', 'transact: result is not an array'), new OvsdbError('OVSDB_TIMEOUT', 'no reply')];
    engine.start();
    await clock.advance(25);
    expect(transactions).toEqual(['protocol_error', 'timeout', 'committed']);
    expect(engine.status().lastError).toBeUndefined();
    await engine.stop();
  });

  it('writes a large pass as pipelined transactions of rowsPerTransaction rows, each with the owned-key form', async () => {
    const { clock, ovsdb, engine, reports, transactions } = setup({ rowsPerTransaction: 2 });
    for (let i = 1; i <= 5; i++) ovsdb.tables.get('Interface')!.set(IF(i), { _uuid: IF(i), name: `vif${i}.0`, external_ids: new Map([['foreign', 'x']]) });
    engine.start();
    await clock.tick();
    // The root row and five interfaces: six rows, three transactions, all sent before any reply.
    expect(ovsdb.sent.map((ops) => ops.filter((op) => op.op !== 'comment').length)).toEqual([2, 2, 2]);
    for (const ops of ovsdb.sent) {
      expect(ops.at(-1)?.op).toBe('comment');
      expect(text(ops)).not.toContain('"foreign"');
    }
    expect(transactions).toEqual(['committed', 'committed', 'committed']);
    expect(reports.at(-1)).toMatchObject({ result: 'changed', rows: 6 });
    await engine.stop();
  });

  it('fails the whole pass when one chunk fails, counts every chunk, and retries the rows', async () => {
    const backoff = { initialMs: 10, maxMs: 10, factor: 1, jitter: 0 };
    const { clock, ovsdb, engine, reports, transactions } = setup({ rowsPerTransaction: 2, backoff });
    for (let i = 1; i <= 3; i++) ovsdb.tables.get('Interface')!.set(IF(i), { _uuid: IF(i), name: `vif${i}.0`, external_ids: new Map() });
    // The first chunk commits, the second fails.
    ovsdb.failWith = [undefined, new OvsdbError('OVSDB_TIMEOUT', 'no reply')];
    engine.start();
    await clock.tick();
    expect(ovsdb.sent).toHaveLength(2);
    expect(transactions).toEqual(['committed', 'timeout']);
    expect(reports.at(-1)).toMatchObject({ result: 'failed', rows: 4 });
    expect(engine.status().lastError).toContain('no reply');
    // The retry writes every row again: the replica (unchanged here) still differs for all of them.
    await clock.advance(10);
    expect(ovsdb.sent).toHaveLength(4);
    expect(transactions).toEqual(['committed', 'timeout', 'committed', 'committed']);
    expect(reports.at(-1)).toMatchObject({ result: 'changed', rows: 4 });
    await engine.stop();
  });

  it('sends nothing in dry-run mode, however large the pass', async () => {
    const { clock, ovsdb, engine, reports, transactions } = setup({ rowsPerTransaction: 1, dryRun: () => true });
    for (let i = 1; i <= 3; i++) ovsdb.tables.get('Interface')!.set(IF(i), { _uuid: IF(i), name: `vif${i}.0`, external_ids: new Map() });
    engine.start();
    await clock.tick();
    expect(ovsdb.sent).toEqual([]);
    expect(transactions).toEqual([]);
    expect(reports.at(-1)).toMatchObject({ result: 'dry_run', rows: 4 });
    await engine.stop();
  });

  it('does not reconcile again the rows whose echo is exactly its write, and does those whose echo is not', async () => {
    const { clock, ovsdb, engine, reports } = setup();
    const row = (i: number, ext: Record<string, string>): ReplicaRow => ({ _uuid: IF(i), name: `vif${i}.0`, external_ids: new Map(Object.entries(ext)) });
    for (let i = 1; i <= 3; i++) ovsdb.tables.get('Interface')!.set(IF(i), row(i, { foreign: 'x' }));
    engine.start();
    await clock.tick();
    expect(ovsdb.sent).toHaveLength(1);
    // The echo: rows 1 and 2 exactly as written; row 3 with a foreign key changed in the same update.
    ovsdb.upsert('Interface', row(1, { foreign: 'x', 'iface-status': 'active' }));
    ovsdb.upsert('Interface', row(2, { foreign: 'x', 'iface-status': 'active' }));
    ovsdb.upsert('Interface', row(3, { foreign: 'y', 'iface-status': 'active' }));
    ovsdb.upsert('Open_vSwitch', rootRow({ 'system-id': 'host-a', 'xs-system-uuid': 'host-a' }));
    await clock.tick();
    await engine.whenIdle();
    expect(reports.at(-1)).toMatchObject({ result: 'converged', dirtyInterfaces: 1 });
    expect(ovsdb.sent).toHaveLength(1);
    expect(engine.isConverged).toBe(true);
    await engine.stop();
  });

  it('reconciles again a written row whose echo never came', async () => {
    const { clock, ovsdb, engine, reports } = setup();
    ovsdb.tables.get('Interface')!.set(IF(1), { _uuid: IF(1), name: 'vif1.0', external_ids: new Map() });
    engine.start();
    await clock.tick();
    expect(ovsdb.sent).toHaveLength(1);
    // Only the root's echo; the Interface row's does not come, so the next pass takes it again.
    ovsdb.upsert('Open_vSwitch', rootRow({ 'system-id': 'host-a', 'xs-system-uuid': 'host-a' }));
    await clock.tick();
    expect(reports.at(-1)).toMatchObject({ result: 'changed', dirtyInterfaces: 1, rows: 1 });
    await engine.stop();
  });

  it('asks the XAPI side to follow what the database refers to', async () => {
    const { clock, ovsdb, xapi, engine } = setup();
    engine.start();
    await clock.tick();
    ovsdb.upsert('Interface', { _uuid: 'i1', name: 'vif3.0', external_ids: new Map([['xs-vif-uuid', 'V1'], ['xs-vm-uuid', 'M1']]) });
    await clock.tick();
    expect(xapi.interest.map((d) => [...d.addVifs])).toContainEqual(['V1']);
    expect(xapi.interest.map((d) => [...d.addVms])).toContainEqual(['M1']);
    await engine.stop();
  });

  it('runs a pass on an XAPI phase change, and nextPass() resolves when it ends', async () => {
    const { clock, xapi, engine, reports } = setup();
    engine.start();
    await clock.tick();
    const before = reports.length;
    const next = engine.nextPass();
    xapi.setPhase('live');
    await clock.tick();
    await next;
    expect(reports.length).toBe(before + 1);
    expect(engine.status().xapiSynced).toBe(true);
    await engine.stop();
  });

  it('resyncs on the clock, and stops doing so once stopped', async () => {
    const { clock, xapi, engine } = setup({ resyncIntervalMs: 1000 });
    engine.start();
    await clock.tick();
    await clock.advance(999);
    expect(xapi.resyncs).toBe(0);
    await clock.advance(1);
    expect(xapi.resyncs).toBe(1);
    await clock.advance(1000);
    expect(xapi.resyncs).toBe(2);
    await engine.stop();
    expect(clock.pending).toBe(0);
  });

  it('does nothing while the replica is not ready, and catches up when monitoring starts', async () => {
    const { clock, ovsdb, engine } = setup();
    ovsdb.replica.ready = false;
    engine.start();
    await clock.tick();
    expect(ovsdb.sent).toHaveLength(0);
    expect(engine.computeAll()).toBeUndefined();
    ovsdb.replica.ready = true;
    ovsdb.upsert('Open_vSwitch', rootRow());
    await clock.tick();
    expect(ovsdb.sent).toHaveLength(1);
    await engine.stop();
  });
});
