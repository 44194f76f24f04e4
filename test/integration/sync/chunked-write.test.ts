/**
 * A pass written as pipelined chunks (src/sync/engine.ts `rowsPerTransaction`), against the real
 * ovsdb-server: every chunk commits, the echo of each is applied, the engine converges with no further
 * write, and keys the daemon does not own are left exactly as they were.
 */
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OvsdbClient } from '../../../src/ovsdb/client.js';
import { namedUuid, map, set } from '../../../src/ovsdb/notation.js';
import { insert, mutate, whereUuid, type Operation } from '../../../src/ovsdb/operations.js';
import type { TransactionOutcome } from '../../../src/outcomes.js';
import { startOvsdbSandbox, type OvsdbSandbox } from '../../../src/sandbox/ovsdb-server.js';
import { SyncEngine } from '../../../src/sync/engine.js';
import type { PassReport } from '../../../src/sync/pass-report.js';
import type { XapiPort } from '../../../src/sync/ports.js';
import { XapiCache, type XapiChange } from '../../../src/xapi/cache.js';
import type { XapiInterestDelta, XapiWatcherPhase } from '../../../src/xapi/watcher.js';
import { serverRows, silent, waitFor } from '../ovsdb/helpers.js';

/** No XAPI at all: the rows below need nothing of it (no xs-* keys), only the pairing rules. */
class QuietXapiPort extends EventEmitter<{ change: [XapiChange]; phase: [XapiWatcherPhase] }> implements XapiPort {
  readonly cache = new XapiCache();
  readonly phase: XapiWatcherPhase = 'idle';
  readonly lookupsOutstanding = false;
  changeInterest(_delta: XapiInterestDelta): void {}
  flushCache(): void {}
  requestResync(): void {}
}

const ROWS = 12;
const PER_TRANSACTION = 5;

describe('SyncEngine writing a large pass as chunks (real ovsdb-server)', () => {
  let sb: OvsdbSandbox;
  let client: OvsdbClient;
  let engine: SyncEngine;
  const reports: PassReport[] = [];
  const outcomes: TransactionOutcome[] = [];

  beforeAll(async () => {
    sb = await startOvsdbSandbox();
    await sb.vsctl('add-br', 'br0');
    const writer = new OvsdbClient({ remote: sb.remote, logger: silent, requestTimeoutMs: 5000 });
    writer.start();
    await waitFor('writer replica', () => writer.replica.ready);
    const bridge = [...writer.replica.table('Bridge')!.values()][0]!;
    const ops: Operation[] = [];
    for (let i = 0; i < ROWS; i++) {
      ops.push(insert('Interface', { name: `vif${i + 1}.0`, external_ids: map({ 'foreign-key': `keep-${i}` }) }, `i${i}`));
      ops.push(insert('Port', { name: `vif${i + 1}.0`, interfaces: namedUuid(`i${i}`) }, `p${i}`));
    }
    ops.push(mutate('Bridge', whereUuid(bridge._uuid), [['ports', 'insert', set(Array.from({ length: ROWS }, (_, i) => namedUuid(`p${i}`)))]]));
    await writer.transact(ops);
    await writer.close();
  });

  afterAll(async () => {
    await engine.stop();
    await client.close();
    await sb.stop();
  });

  it('commits every chunk, converges without another write, and keeps the keys it does not own', async () => {
    client = new OvsdbClient({ remote: sb.remote, logger: silent, requestTimeoutMs: 5000 });
    engine = new SyncEngine({
      ovsdb: client,
      watcher: new QuietXapiPort(),
      logger: silent,
      facts: () => ({ inventory: {}, systemId: 'host-chunks', enableStatistics: false }),
      dryRun: () => false,
      resyncIntervalMs: 0,
      rowsPerTransaction: PER_TRANSACTION,
      observer: { passFinished: (r) => reports.push(r), transaction: (o) => outcomes.push(o) },
    });
    engine.start();
    client.start();
    await waitFor('convergence', () => engine.isConverged, 10_000);

    // The root row and every Interface (iface-status): one pass, ceil(13 / 5) = 3 transactions.
    const changed = reports.filter((r) => r.result === 'changed');
    expect(changed).toHaveLength(1);
    expect(changed[0]!.rows).toBe(ROWS + 1);
    expect(outcomes).toEqual(['committed', 'committed', 'committed']);
    expect(client.counters.transactions.committed).toBe(3);
    // The echo of every chunk was exactly the write: the follow-up pass took no Interface row again.
    expect(reports.at(-1)).toMatchObject({ result: 'converged', dirtyInterfaces: 0 });

    const rows = [...(await serverRows(sb, 'Interface')).values()].filter((row) => row.name.startsWith('vif'));
    expect(rows).toHaveLength(ROWS);
    for (const row of rows) {
      const i = Number(/^vif(\d+)\.0$/.exec(row.name)![1]) - 1;
      expect(row.externalIds.get('iface-status')).toBe('active');
      expect(row.externalIds.get('foreign-key')).toBe(`keep-${i}`);
    }
    expect(await sb.vsctl('get', 'Open_vSwitch', '.', 'external_ids:system-id')).toContain('host-chunks');
  });
});
