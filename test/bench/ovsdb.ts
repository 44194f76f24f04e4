import { pino } from 'pino';
import { OvsdbClient } from '../../src/ovsdb/client.js';
import { map, namedUuid, set } from '../../src/ovsdb/notation.js';
import { insert, mutate, mutateMapKeys, type Operation } from '../../src/ovsdb/operations.js';
import { startOvsdbSandbox } from '../../src/sandbox/ovsdb-server.js';

const ROWS = 8000;
const BATCH = 1000;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function rssMb(): number {
  return process.memoryUsage().rss / (1024 * 1024);
}

async function until(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('bench: timed out');
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * OVSDB client figures at hypervisor scale (docs/ovsdb.md §7 for the server-side baseline): the
 * initial monitor of 8000 Interface rows (time to a ready replica, RSS delta) and one transaction that
 * sets `external_ids:iface-id` on all of them through `mutateMapKeys`. A measurement, not a test.
 */
export async function benchOvsdb(): Promise<Record<string, number>> {
  const logger = pino({ level: 'silent' });
  const sb = await startOvsdbSandbox();
  try {
    await sb.vsctl('add-br', 'br-perf');
    const writer = new OvsdbClient({ remote: sb.remote, logger, tables: { Bridge: { name: 'string' } }, requestTimeoutMs: 60_000 });
    writer.start();
    await until(() => writer.replica.ready, 10_000);
    const bridge = [...writer.replica.table('Bridge')!.values()].find((b) => b.name === 'br-perf')!;
    const tPopulate = performance.now();
    for (let start = 0; start < ROWS; start += BATCH) {
      const ops: Operation[] = [];
      const ports = [];
      for (let i = start; i < start + BATCH; i++) {
        const mac = `52:54:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
        ops.push(
          insert('Interface', { name: `vif${i}.0`, external_ids: map({ 'attached-mac': mac, 'xs-vif-uuid': `vif-${i}`, owner: 'bench' }) }, `i${i}`),
          insert('Port', { name: `vif${i}.0`, interfaces: namedUuid(`i${i}`) }, `p${i}`),
        );
        ports.push(namedUuid(`p${i}`));
      }
      ops.push(mutate('Bridge', [['_uuid', '==', ['uuid', bridge._uuid]]], [['ports', 'insert', set(ports)]]));
      await writer.transact(ops);
    }
    const populateMs = performance.now() - tPopulate;
    await writer.close();

    gc();
    const rssBefore = rssMb();
    const heapBefore = process.memoryUsage().heapUsed / (1024 * 1024);
    const client = new OvsdbClient({ remote: sb.remote, logger, requestTimeoutMs: 60_000 });
    const t0 = performance.now();
    client.start();
    await until(() => client.replica.ready, 30_000);
    const initialMonitorMs = performance.now() - t0;
    const interfaces = client.replica.table('Interface')!;
    const rssAfterMonitor = rssMb();
    gc();
    const rssRetained = rssMb();
    const heapRetained = process.memoryUsage().heapUsed / (1024 * 1024);

    const ops = [...interfaces.values()]
      .filter((row) => row.name.startsWith('vif'))
      .map((row) => mutateMapKeys('Interface', row._uuid, 'external_ids', { 'iface-id': `iface-${row.name}` }, []));
    const t1 = performance.now();
    const results = await client.transact(ops, { comment: 'bench: set iface-id on every vif' });
    const transactMs = performance.now() - t1;
    if (results.some((r) => r.count !== 1)) throw new Error('bench: a mutate did not match its row');
    // The update for our own write arrives before the reply on this session (docs/ovsdb.md §2).
    const t2 = performance.now();
    await until(() => [...interfaces.values()].every((row) => !row.name.startsWith('vif') || row.external_ids.has('iface-id')), 30_000);
    const updateAppliedMs = transactMs + (performance.now() - t2);
    await client.close();

    return {
      interface_rows: interfaces.size,
      populate_8_txns_ms: round(populateMs),
      initial_monitor_ms: round(initialMonitorMs),
      initial_monitor_rss_delta_mb: round(rssAfterMonitor - rssBefore),
      replica_retained_rss_delta_mb: round(rssRetained - rssBefore),
      replica_retained_heap_mb: round(heapRetained - heapBefore),
      transact_8000_mutates_ms: round(transactMs),
      transact_8000_until_replica_updated_ms: round(updateAppliedMs),
    };
  } finally {
    await sb.stop();
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
