import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import type { XapiChange } from '../../../src/xapi/cache.js';
import { createXapiClient, type XapiClient } from '../../../src/xapi/client.js';
import { getThisHost, lookupNetworksByBridge, lookupVifsByUuid } from '../../../src/xapi/lookups.js';
import { setInterest } from './support.js';

const logger = pino({ level: 'silent' });
const FAST_BACKOFF = { initialMs: 20, maxMs: 100, factor: 2, jitter: 0 };

async function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function nextChange(client: XapiClient, matches: (c: XapiChange) => boolean): Promise<XapiChange> {
  return new Promise((resolve) => {
    const on = (c: XapiChange): void => {
      if (!matches(c)) return;
      client.watcher.off('change', on);
      resolve(c);
    };
    client.watcher.on('change', on);
  });
}

const combos = [
  ['xmlrpc', 'tcp'],
  ['jsonrpc', 'tcp'],
  ['xmlrpc', 'unix'],
  ['jsonrpc', 'unix'],
] as const;

describe.each(combos)('XAPI client against the simulator (%s over %s)', (protocol, via) => {
  let sim: Simulator;
  let dir: string;
  const clients: XapiClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xapi-client-'));
    sim = await startSimulator({ generate: { vms: 4, vifsPerVm: 2, hosts: 2 }, ...(via === 'unix' ? { unix: join(dir, 'xapi') } : {}) });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await sim.faults.set({ down: false, malformedEvery: 0, http500: false });
  });
  afterAll(async () => {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function client(): XapiClient {
    const c = createXapiClient({
      url: via === 'unix' ? `unix:${join(dir, 'xapi')}` : (sim.url ?? ''),
      protocol,
      user: 'root',
      password: 'pw',
      callTimeoutMs: 2000,
      eventTimeoutSec: 30,
      lookupBatchSize: 200,
      logger,
      backoff: FAST_BACKOFF,
    });
    clients.push(c);
    return c;
  }

  it('logs in and looks things up', async () => {
    const { session } = client();
    const host = await getThisHost(session);
    expect(host.uuid).toBe(sim.thisHost.uuid);
    expect((await lookupNetworksByBridge(session, ['xenbr0'])).get('xenbr0')?.uuid).toBe(sim.state.resolve('network', 'xenbr0').uuid);
    const local = sim.localVifs();
    expect(local.length).toBe(4);
    const found = await lookupVifsByUuid(session, [...local.map((v) => v.vifUuid), '00000000-0000-4000-8000-000000000000']);
    expect([...found.keys()].sort()).toEqual(local.map((v) => v.vifUuid).sort());
    expect(session.valid).toBe(true);
  });

  it('re-logs in once when the session is invalidated, and the call succeeds', async () => {
    const { session } = client();
    await session.call('pool.get_all', []);
    sim.resetCounters();
    sim.invalidateSessions();
    expect(Array.isArray(await session.call('pool.get_all', []))).toBe(true);
    expect(sim.counters.calls['session.login_with_password']).toBe(1);
    expect(sim.counters.calls['pool.get_all']).toBe(2);
  });

  it('retries while the simulator is down and recovers when it is back', async () => {
    const { session } = client();
    await session.call('pool.get_all', []);
    await sim.faults.set({ down: true });
    const pending = session.call('pool.get_all', [], { retries: 30 });
    setTimeout(() => void sim.faults.set({ down: false }), 150);
    expect(Array.isArray(await pending)).toBe(true);
  });

  it('a malformed reply is a typed error and the next call is fine', async () => {
    const { session } = client();
    await session.call('pool.get_all', []);
    await sim.faults.set({ malformedEvery: 1 });
    await expect(session.call('pool.get_all', [], { retries: 0 })).rejects.toMatchObject({ code: 'XAPI_PROTOCOL' });
    await sim.faults.set({ malformedEvery: 0 });
    expect(Array.isArray(await session.call('pool.get_all', []))).toBe(true);
  });

  it('watcher: lookups resolve, other_config changes arrive within 100 ms, deletions are reported', async () => {
    const c = client();
    const local = sim.localVifs();
    const [first, second] = local;
    if (first === undefined || second === undefined) throw new Error('fixture has too few VIFs');
    setInterest(c.watcher, { vifs: [first.vifUuid], vms: [first.vmUuid, '00000000-0000-4000-8000-0000000000ff'], bridges: ['xenbr0'] });
    expect(c.watcher.cache.vif(first.vifUuid).state).toBe('pending');
    c.start();
    await waitFor(() => c.watcher.phase === 'live' && c.watcher.cache.vif(first.vifUuid).state === 'known');
    expect(c.watcher.cache.vm('00000000-0000-4000-8000-0000000000ff').state).toBe('absent');
    expect(c.watcher.cache.host?.uuid).toBe(sim.thisHost.uuid);
    expect(c.watcher.cache.networkByBridge('xenbr0').state).toBe('known');

    // Let the long-poll settle, then change a subscribed object.
    await new Promise((r) => setTimeout(r, 30));
    const changed = nextChange(c, (ch) => ch.vifs.has(first.vifUuid));
    const t0 = performance.now();
    sim.state.setOtherConfig('VIF', first.vifUuid, { 'nicira-iface-id': 'custom' });
    await changed;
    expect(performance.now() - t0).toBeLessThan(100);
    const vif = c.watcher.cache.vif(first.vifUuid);
    expect(vif.state === 'known' && vif.record.otherConfig['nicira-iface-id']).toBe('custom');

    // Interest growth: the new VIF is looked up and then followed by the long-poll.
    const polls = sim.counters.calls['event.from'] ?? 0;
    setInterest(c.watcher, { vifs: [first.vifUuid, second.vifUuid], vms: [first.vmUuid], bridges: ['xenbr0'] });
    await waitFor(() => c.watcher.cache.vif(second.vifUuid).state === 'known');
    await waitFor(() => (sim.counters.calls['event.from'] ?? 0) > polls);
    await new Promise((r) => setTimeout(r, 30));
    const secondChanged = nextChange(c, (ch) => ch.vifs.has(second.vifUuid));
    sim.state.setOtherConfig('VIF', second.vifUuid, { 'nicira-iface-id': 'other' });
    await secondChanged;

    // Network changes (subscription to the followed network).
    const netChanged = nextChange(c, (ch) => ch.networks.has('xenbr0'));
    sim.state.setOtherConfig('network', 'xenbr0', { 'nicira-bridge-id': 'b0' });
    await netChanged;
    const net = c.watcher.cache.networkByBridge('xenbr0');
    expect(net.state === 'known' && net.record.otherConfig['nicira-bridge-id']).toBe('b0');

    // Deletion keeps the last record, marked deleted (docs/design.md §3.2).
    const deleted = nextChange(c, (ch) => ch.vifs.has(first.vifUuid));
    sim.state.removeVif(first.vifUuid);
    await deleted;
    const gone = c.watcher.cache.vif(first.vifUuid);
    expect(gone.state === 'known' && gone.deleted).toBe(true);
    expect(gone.state === 'known' && gone.record.otherConfig['nicira-iface-id']).toBe('custom');
  });

  it('watcher: XAPI down → new lookups unknown; back up → resynchronised', async () => {
    const c = client();
    const [first, second] = sim.localVifs();
    if (first === undefined || second === undefined) throw new Error('fixture has too few VIFs');
    setInterest(c.watcher, { vifs: [first.vifUuid], vms: [], bridges: [] });
    c.start();
    await waitFor(() => c.watcher.phase === 'live' && c.watcher.cache.vif(first.vifUuid).state === 'known');
    await sim.faults.set({ down: true });
    await waitFor(() => c.watcher.phase === 'down');
    expect(c.session.valid).toBe(false);
    setInterest(c.watcher, { vifs: [first.vifUuid, second.vifUuid], vms: [], bridges: [] });
    expect(c.watcher.cache.vif(second.vifUuid).state).toBe('unknown');
    expect(c.watcher.cache.vif(first.vifUuid).state).toBe('known');
    await sim.faults.set({ down: false });
    await waitFor(() => c.watcher.phase === 'live' && c.watcher.cache.vif(second.vifUuid).state === 'known');
    expect(c.session.valid).toBe(true);
  });
});

describe('watcher at scale', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ generate: { vms: 250, vifsPerVm: 4, hosts: 4 } });
  });
  afterAll(async () => {
    await sim.close();
  });

  it.each(['xmlrpc', 'jsonrpc'] as const)('1000 VIF lookups cost at most 20 calls (%s); an idle watcher keeps one long-poll', async (protocol) => {
    const vifs = sim.state.all('VIF').map((r) => r.fields.uuid as string);
    const vms = sim.state.all('VM').map((r) => r.fields.uuid as string);
    expect(vifs.length).toBe(1000);
    sim.resetCounters();
    const c = createXapiClient({ url: sim.url ?? '', protocol, user: '', password: '', callTimeoutMs: 5000, eventTimeoutSec: 30, lookupBatchSize: 200, logger });
    try {
      c.start();
      // Many small setInterest calls, as OVSDB rows arrive, coalesce into batches.
      for (let i = 0; i < vifs.length; i += 50) setInterest(c.watcher, { vifs: vifs.slice(0, i + 50), vms, bridges: [] });
      await waitFor(() => vifs.every((u) => c.watcher.cache.vif(u).state === 'known') && vms.every((u) => c.watcher.cache.vm(u).state === 'known'), 10_000);
      await new Promise((r) => setTimeout(r, 100));
      const calls = sim.counters.calls;
      const lookups = (calls['VIF.get_all_records_where'] ?? 0) + (calls['VM.get_all_records_where'] ?? 0);
      if (process.env.XAPI_TEST_VERBOSE !== undefined) process.stderr.write(`calls: ${JSON.stringify(calls)}\n`);
      expect(calls['VIF.get_all_records_where'] ?? 0).toBeLessThanOrEqual(10);
      expect(sim.counters.totalCalls - (calls['event.from'] ?? 0)).toBeLessThanOrEqual(20);
      expect(lookups).toBeGreaterThan(0);
      // Idle: no call other than the one long-poll in flight.
      const before = sim.counters.totalCalls;
      await new Promise((r) => setTimeout(r, 200));
      expect(sim.counters.totalCalls).toBe(before);
    } finally {
      await c.close();
    }
  });
});

describe('protocol auto against a host without /jsonrpc', () => {
  let sim: Simulator;
  let proxy: http.Server;
  const paths: string[] = [];

  beforeAll(async () => {
    sim = await startSimulator({ generate: { vms: 2, vifsPerVm: 1, hosts: 1 } });
    const target = new URL(sim.url ?? '');
    // An older xapi: no handler for /jsonrpc (http_svr.ml:134-140 answers 404), XML-RPC at /.
    proxy = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      if (req.url === '/jsonrpc') {
        req.resume();
        res.writeHead(404, { connection: 'close', 'cache-control': 'no-cache, no-store' });
        res.end();
        return;
      }
      const upstream = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      // A client that closes (the watcher abandons its long-poll, the test ends) resets both legs.
      upstream.on('error', () => res.destroy());
      req.on('error', () => upstream.destroy());
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
    await sim.close();
  });

  it('falls back to XML-RPC once and follows XAPI from there', async () => {
    const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const c = createXapiClient({ url, protocol: 'auto', user: '', password: '', callTimeoutMs: 5000, eventTimeoutSec: 1, lookupBatchSize: 100, logger, backoff: FAST_BACKOFF });
    try {
      const [vif] = sim.localVifs();
      if (vif === undefined) throw new Error('fixture has no local VIF');
      c.start();
      setInterest(c.watcher, { vifs: [vif.vifUuid], vms: [vif.vmUuid], bridges: [] });
      await waitFor(() => c.watcher.cache.vif(vif.vifUuid).state === 'known', 10_000);
      expect(paths.filter((p) => p === '/jsonrpc')).toHaveLength(1);
      expect(paths.filter((p) => p === '/').length).toBeGreaterThan(1);
      expect(c.session.target).toBe(url);
    } finally {
      await c.close();
    }
  });
});
