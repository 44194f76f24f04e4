import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { OvsdbClient, type OvsdbClientState } from '../../../src/ovsdb/client.js';
import { OvsdbError, OvsdbOperationError } from '../../../src/ovsdb/errors.js';
import { mutate, mutateMapKeys, updateColumns, whereUuid } from '../../../src/ovsdb/operations.js';
import type { ReplicaChange } from '../../../src/ovsdb/replica.js';
import { startOvsdbSandbox, type OvsdbSandbox } from '../../../src/sandbox/ovsdb-server.js';
import { serverRows, silent, sortedEntries, waitFor } from './helpers.js';

const run = promisify(execFile);
const FAST_BACKOFF = { initialMs: 20, maxMs: 100, factor: 2, jitter: 0.5 };

let sb: OvsdbSandbox;
const clients: OvsdbClient[] = [];

function newClient(extra: Partial<ConstructorParameters<typeof OvsdbClient>[0]> = {}): OvsdbClient {
  const client = new OvsdbClient({ remote: sb.remote, logger: silent, backoff: FAST_BACKOFF, requestTimeoutMs: 3000, ...extra });
  clients.push(client);
  client.start();
  return client;
}

async function ready(client: OvsdbClient): Promise<void> {
  await waitFor('replica ready', () => client.replica.ready);
}

function ifaceByName(client: OvsdbClient, name: string) {
  const rows = client.replica.table('Interface');
  if (rows === undefined) return undefined;
  for (const row of rows.values()) if (row.name === name) return row;
  return undefined;
}

async function expectReplicaEqualsServer(client: OvsdbClient): Promise<void> {
  const server = await serverRows(sb, 'Interface');
  const replica = client.replica.table('Interface');
  expect(replica).toBeDefined();
  expect([...replica!.keys()].sort()).toEqual([...server.keys()].sort());
  for (const [id, row] of server) {
    const mine = replica!.get(id)!;
    expect(mine.name).toBe(row.name);
    expect(sortedEntries(mine.external_ids)).toEqual(sortedEntries(row.externalIds));
  }
}

beforeAll(async () => {
  sb = await startOvsdbSandbox();
  await sb.vsctl('add-br', 'br0');
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  // A failed fault test must not leave the next test without a server.
  if (sb.running) sb.resume();
  else await sb.restart();
});

afterAll(async () => {
  await sb.stop();
});

describe('replica', () => {
  test('rows created with ovs-vsctl appear; one external_ids change arrives and matches ovs-vsctl get', async () => {
    const client = newClient();
    const changes: ReplicaChange[] = [];
    client.on('change', (c) => changes.push(c));
    await ready(client);
    expect(client.state).toBe('monitoring');
    expect(client.counters.monitorMethod).toBe('monitor_cond_since');

    await sb.vsctl('add-port', 'br0', 'vif1.0', '--', 'set', 'Interface', 'vif1.0', 'external_ids:foo=bar', 'external_ids:xs-vif-uuid=v1');
    const row = await waitFor('vif1.0 in replica', () => ifaceByName(client, 'vif1.0'));
    expect(Object.fromEntries(row.external_ids)).toEqual({ foo: 'bar', 'xs-vif-uuid': 'v1' });
    expect(changes.some((c) => c.tables.get('Interface')?.get(row._uuid)?.kind === 'inserted')).toBe(true);

    changes.length = 0;
    await sb.vsctl('set', 'Interface', 'vif1.0', 'external_ids:foo=baz');
    await waitFor('foo=baz', () => ifaceByName(client, 'vif1.0')?.external_ids.get('foo') === 'baz');
    const modified = changes.flatMap((c) => [...(c.tables.get('Interface') ?? [])]);
    expect(modified).toHaveLength(1);
    expect(modified[0]![0]).toBe(row._uuid);
    expect(modified[0]![1].kind).toBe('modified');
    expect(await sb.vsctl('get', 'Interface', 'vif1.0', 'external_ids')).toBe('{foo=baz, xs-vif-uuid=v1}');
    expect(ifaceByName(client, 'vif1.0')!.external_ids.get('xs-vif-uuid')).toBe('v1');

    // Remove one key, change another's value and add a third in one command: one toggle diff.
    await sb.vsctl('remove', 'Interface', 'vif1.0', 'external_ids', 'xs-vif-uuid', '--', 'set', 'Interface', 'vif1.0', 'external_ids:foo=qux', 'external_ids:new=1');
    await waitFor('new=1', () => ifaceByName(client, 'vif1.0')?.external_ids.get('new') === '1');
    await expectReplicaEqualsServer(client);
  });

  test('optional scalars (fail_mode, system_type) and the Open_vSwitch row', async () => {
    const client = newClient();
    await ready(client);
    const bridge = () => [...client.replica.table('Bridge')!.values()].find((b) => b.name === 'br0');
    expect(bridge()!.fail_mode).toBeUndefined();
    await sb.vsctl('set-fail-mode', 'br0', 'secure');
    await waitFor('secure', () => bridge()?.fail_mode === 'secure');
    await sb.vsctl('set-fail-mode', 'br0', 'standalone');
    await waitFor('standalone', () => bridge()?.fail_mode === 'standalone');
    await sb.vsctl('del-fail-mode', 'br0');
    await waitFor('cleared', () => bridge()?.fail_mode === undefined);

    await sb.vsctl('set', 'Open_vSwitch', '.', 'system_type=XCP-ng', 'system_version=8.3.0-1', 'external_ids:system-id=abc');
    const ovs = await waitFor('system_type', () => {
      const row = [...(client.replica.table('Open_vSwitch')?.values() ?? [])][0];
      return row?.system_type === 'XCP-ng' ? row : undefined;
    });
    expect(ovs.system_version).toBe('8.3.0-1');
    expect(ovs.external_ids.get('system-id')).toBe('abc');
  });
});

describe('transactions', () => {
  test('mutateMapKeys changes owned keys and preserves foreign ones; removal; deleted row is not an error', async () => {
    const client = newClient();
    await ready(client);
    await sb.vsctl('add-port', 'br0', 'vif2.0', '--', 'set', 'Interface', 'vif2.0', 'external_ids:foreign=x', 'external_ids:iface-id=old');
    const row = await waitFor('vif2.0', () => ifaceByName(client, 'vif2.0'));

    const [r1] = await client.transact([mutateMapKeys('Interface', row._uuid, 'external_ids', { 'iface-id': 'new', 'vm-id': 'vm1' }, [])], {
      comment: 'test: set iface-id',
    });
    expect(r1).toEqual({ count: 1 });
    expect(await sb.vsctl('get', 'Interface', 'vif2.0', 'external_ids')).toBe('{foreign=x, iface-id=new, vm-id=vm1}');

    await client.transact([mutateMapKeys('Interface', row._uuid, 'external_ids', new Map(), ['vm-id', 'absent-key'])]);
    expect(await sb.vsctl('get', 'Interface', 'vif2.0', 'external_ids')).toBe('{foreign=x, iface-id=new}');
    await waitFor('replica follows', () => ifaceByName(client, 'vif2.0')?.external_ids.has('vm-id') === false);

    await sb.vsctl('del-port', 'br0', 'vif2.0');
    const [r2] = await client.transact([mutateMapKeys('Interface', row._uuid, 'external_ids', { 'iface-id': 'x' }, [])]);
    expect(r2).toEqual({ count: 0 });
    expect(client.counters.transactions.committed).toBe(3);
  });

  test('updateColumns sets and clears an optional enum; in-band and commit errors are typed', async () => {
    const client = newClient();
    await ready(client);
    const br = [...client.replica.table('Bridge')!.values()].find((b) => b.name === 'br0')!;
    await client.transact([updateColumns('Bridge', br._uuid, { fail_mode: 'secure' })]);
    expect(await sb.vsctl('get', 'Bridge', 'br0', 'fail_mode')).toBe('secure');
    await client.transact([updateColumns('Bridge', br._uuid, { fail_mode: undefined })]);
    expect(await sb.vsctl('get', 'Bridge', 'br0', 'fail_mode')).toBe('[]');

    const iface = [...client.replica.table('Interface')!.values()][0]!;
    const immutable = client.transact([updateColumns('Interface', iface._uuid, { name: 'renamed' })]);
    await expect(immutable).rejects.toBeInstanceOf(OvsdbOperationError);
    await expect(immutable).rejects.toMatchObject({ error: 'constraint violation', opIndex: 0, commitError: false });

    // A dangling strong reference only fails at commit: the extra result element (RFC 7047 §4.1.3).
    const dangling = client.transact([
      mutate('Bridge', whereUuid(br._uuid), [['ports', 'insert', ['set', [['uuid', '11111111-2222-3333-4444-555555555555']]]]]),
    ]);
    await expect(dangling).rejects.toMatchObject({ code: 'OVSDB_OPERATION', error: 'referential integrity violation', opIndex: 1, commitError: true });
    expect(client.counters.transactions.operation_error).toBe(2);
  });
});

describe('faults', () => {
  test('kill -9 and restart: pending requests rejected, reconnect, resync reports rows deleted while down', async () => {
    await sb.vsctl('add-port', 'br0', 'p1', '--', 'add-port', 'br0', 'p2', '--', 'set', 'Interface', 'p2', 'external_ids:keep=me');
    const client = newClient();
    await ready(client);
    const states: OvsdbClientState[] = [];
    client.on('state', (s) => states.push(s));
    const changes: ReplicaChange[] = [];
    client.on('change', (c) => changes.push(c));
    const p1 = ifaceByName(client, 'p1')!;
    const p2 = ifaceByName(client, 'p2')!;
    const p2Port = await sb.vsctl('get', 'Port', 'p2', '_uuid');

    // Stopped, the server cannot answer: the transaction is still pending when the server dies.
    sb.pause();
    const pending = client.transact([mutateMapKeys('Interface', p1._uuid, 'external_ids', { a: 'b' }, [])]);
    const settled = pending.catch((e: unknown) => e);
    await sb.kill('SIGKILL');
    const err = await settled;
    expect(err).toBeInstanceOf(OvsdbError);
    expect((err as OvsdbError).code).toBe('OVSDB_CONNECTION_CLOSED');
    await waitFor('not ready', () => !client.replica.ready);
    expect(client.replica.table('Interface')).toBeUndefined();

    // While the server is down: remove p2 (its Port, so the Interface is garbage-collected) and edit p1, offline.
    const brUuid = await run('ovsdb-tool', [
      'query',
      sb.dbPath,
      JSON.stringify(['Open_vSwitch', { op: 'select', table: 'Bridge', where: [['name', '==', 'br0']], columns: ['_uuid'] }]),
    ]);
    const br = (JSON.parse(brUuid.stdout) as [{ rows: [{ _uuid: [string, string] }] }])[0].rows[0]._uuid[1];
    await run('ovsdb-tool', [
      'transact',
      sb.dbPath,
      JSON.stringify([
        'Open_vSwitch',
        { op: 'mutate', table: 'Bridge', where: [['_uuid', '==', ['uuid', br]]], mutations: [['ports', 'delete', ['set', [['uuid', p2Port]]]]] },
        { op: 'mutate', table: 'Interface', where: [['_uuid', '==', ['uuid', p1._uuid]]], mutations: [['external_ids', 'insert', ['map', [['offline', '1']]]]] },
      ]),
    ]);

    await sb.restart();
    await ready(client);
    expect(client.counters.reconnects).toBeGreaterThanOrEqual(1);
    expect(states).toContain('monitoring');
    expect(ifaceByName(client, 'p2')).toBeUndefined();
    await expectReplicaEqualsServer(client);
    const resync = changes.find((c) => c.resync)!;
    const p2Change = resync.tables.get('Interface')?.get(p2._uuid);
    expect(p2Change?.kind).toBe('deleted');
    expect(p2Change?.kind === 'deleted' ? (p2Change.old.external_ids as ReadonlyMap<string, string>).get('keep') : undefined).toBe('me');
    expect(resync.tables.get('Interface')?.get(p1._uuid)?.kind).toBe('modified');
  });

  test('an idle connection to a healthy server stays up: the probes are answered', async () => {
    const client = newClient({ probeIntervalMs: 100 });
    await ready(client);
    const states: OvsdbClientState[] = [];
    const off = client.on('state', (s) => states.push(s));
    // Ten probe intervals of silence: each probe goes out and its echo reply (often within the same
    // millisecond on a unix socket) must count as the server being alive.
    await new Promise((r) => setTimeout(r, 1000));
    off();
    expect(states).toEqual([]);
    expect(client.counters.reconnects).toBe(0);
    expect(client.state).toBe('monitoring');
  });

  test('SIGSTOP: the echo probe notices within its interval; reconnects after SIGCONT', async () => {
    const client = newClient({ probeIntervalMs: 200, requestTimeoutMs: 1000 });
    await ready(client);
    const t0 = Date.now();
    sb.pause();
    try {
      await waitFor('probe notices the hung server', () => client.state !== 'monitoring', 3000);
      const elapsed = Date.now() - t0;
      // Idle for one interval, then one more for the echo reply: about 400 ms.
      expect(elapsed).toBeGreaterThanOrEqual(300);
      expect(elapsed).toBeLessThan(1500);
      expect(client.replica.ready).toBe(false);
    } finally {
      sb.resume();
    }
    await waitFor('monitoring again', () => client.state === 'monitoring' && client.replica.ready, 5000);
    await expectReplicaEqualsServer(client);
  });

  test('monitor fallback when the server disables monitor_cond', async () => {
    await sb.appctl('ovsdb-server/disable-monitor-cond');
    try {
      const client = newClient();
      await ready(client);
      expect(client.counters.monitorMethod).toBe('monitor');
      await expectReplicaEqualsServer(client);
      await sb.vsctl('add-port', 'br0', 'legacy1', '--', 'set', 'Interface', 'legacy1', 'external_ids:k=v');
      await waitFor('legacy insert', () => ifaceByName(client, 'legacy1')?.external_ids.get('k') === 'v');
      await sb.vsctl('set', 'Interface', 'legacy1', 'external_ids:k=w');
      await waitFor('legacy modify', () => ifaceByName(client, 'legacy1')?.external_ids.get('k') === 'w');
      await sb.vsctl('del-port', 'br0', 'legacy1');
      await waitFor('legacy delete', () => client.replica.ready && ifaceByName(client, 'legacy1') === undefined);
      await expectReplicaEqualsServer(client);
    } finally {
      // The setting lives in the server process only: a restart re-enables monitor_cond.
      await sb.restart();
    }
  });
});
