import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CodedError } from '../../../src/errors.js';
import { ProgressTracker } from '../../../src/health/liveness.js';
import { Metrics } from '../../../src/health/metrics.js';
import { startHealthServer, type HealthServer, type HealthServerOptions } from '../../../src/health/server.js';
import { familyOf, parseExposition, sampleValue } from '../../unit/health/exposition.js';

const logger = pino({ level: 'silent' });
let server: HealthServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(options: Partial<HealthServerOptions> = {}): Promise<HealthServer> {
  server = await startHealthServer({ host: '127.0.0.1', port: 0, logger, ...options });
  return server;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const port = server!.address.port;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }); });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Writes raw bytes and collects everything the server sends until it closes the connection. */
function raw(bytes: string | Buffer, timeoutMs = 3000): Promise<{ text: string; closed: boolean }> {
  const port = server!.address.port;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, timeoutMs);
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(bytes);
  });
}

describe('liveness: /healthz and /livez', () => {
  it('answer 200 {"status":"ok"} with JSON, no-store, keep-alive', async () => {
    await start();
    for (const path of ['/healthz', '/livez', '/livez?verbose']) {
      const r = await get(path);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ status: 'ok' });
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(r.headers['cache-control']).toBe('no-store');
    }
    const head = await get('/healthz', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    // HTTP/1.1 keep-alive: two requests on one connection, two answers, connection left open.
    const req = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const both = await raw(req + req, 400);
    expect(both.text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(both.text).toMatch(/Connection: keep-alive/i);
    expect(both.closed).toBe(false);
  });

  it('answer 503 naming the reason when the sync loop stops making progress', async () => {
    let now = 0;
    const tracker = new ProgressTracker({ expectedIntervalMs: 1000, factor: 2, now: () => now });
    await start({ progress: tracker.check });
    expect((await get('/livez')).status).toBe(200);
    now = 2500;
    const r = await get('/livez');
    expect(r.status).toBe(503);
    const body = JSON.parse(r.body);
    expect(body.status).toBe('unhealthy');
    expect(body.checks.progress.ok).toBe(false);
    expect(body.checks.progress.detail).toMatch(/no reconcile pass finished/);
    expect(body.checks.event_loop.ok).toBe(true);
    tracker.passFinished();
    expect((await get('/healthz')).status).toBe(200);
  });

  it('answer 503 after the event loop was blocked longer than the threshold', async () => {
    await start({ eventLoop: { intervalMs: 20, thresholdMs: 100, windowMs: 5000 } });
    expect((await get('/livez')).status).toBe(200);
    const until = Date.now() + 250;
    while (Date.now() < until) {
      // deliberately block the event loop
    }
    const r = await get('/livez');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).checks.event_loop.detail).toMatch(/blocked for \d+ ms/);
  });
});

describe('readiness: /readyz', () => {
  it('goes 503 → 200 → 503 as checks flip, listing every check and why', async () => {
    const state = { ovsdb: false, xapi: false, reconcile: false };
    await start({
      checks: {
        ovsdb: () => ({ ok: state.ovsdb, detail: state.ovsdb ? 'monitoring 5 tables' : 'not connected: ECONNREFUSED' }),
        xapi: () => ({ ok: state.xapi, detail: state.xapi ? 'session valid' : 'waiting for xapi_init_complete.cookie' }),
      },
    });
    server!.setCheck('reconcile', () => ({ ok: state.reconcile, detail: state.reconcile ? 'converged' : 'no pass yet' }));

    let r = await get('/readyz');
    expect(r.status).toBe(503);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(r.body)).toEqual({
      status: 'not ready',
      checks: {
        ovsdb: { ok: false, detail: 'not connected: ECONNREFUSED' },
        xapi: { ok: false, detail: 'waiting for xapi_init_complete.cookie' },
        reconcile: { ok: false, detail: 'no pass yet' },
      },
    });

    Object.assign(state, { ovsdb: true, xapi: true, reconcile: true });
    r = await get('/readyz');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).status).toBe('ok');

    state.xapi = false;
    r = await get('/readyz');
    expect(r.status).toBe(503);
    const body = JSON.parse(r.body);
    expect(Object.keys(body.checks)).toEqual(['ovsdb', 'xapi', 'reconcile']);
    expect(body.checks.ovsdb).toEqual({ ok: true, detail: 'monitoring 5 tables' });
    expect(body.checks.xapi).toEqual({ ok: false, detail: 'waiting for xapi_init_complete.cookie' });
  });

  it('reports a throwing check as failed instead of crashing', async () => {
    await start({
      checks: {
        broken: () => {
          throw new Error('replica gone');
        },
      },
    });
    const r = await get('/readyz');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).checks.broken).toEqual({ ok: false, detail: 'check threw: replica gone' });
  });
});

describe('/metrics', () => {
  it('serves Prometheus text that parses, and counts a reconcile after observeReconcile', async () => {
    const metrics = new Metrics({ version: '0.1.0' });
    let ready = false;
    await start({ metrics, checks: { ovsdb: () => ({ ok: ready, detail: '' }) } });
    let r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    let exp = parseExposition(r.body);
    for (const s of exp.samples.filter((x) => x.name.startsWith('ovs_xapi_sync_'))) {
      const family = familyOf(s.name, exp.types);
      expect(family, s.name).toBeDefined();
      expect(exp.help.has(family!), s.name).toBe(true);
    }
    expect(sampleValue(exp, 'ovs_xapi_sync_reconcile_passes_total', { result: 'converged' })).toBe(0);
    expect(sampleValue(exp, 'ovs_xapi_sync_ready')).toBe(0);

    metrics.observeReconcile('converged', 0.012);
    ready = true;
    r = await get('/metrics');
    exp = parseExposition(r.body);
    expect(sampleValue(exp, 'ovs_xapi_sync_reconcile_passes_total', { result: 'converged' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_ready')).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_readiness_check', { check: 'ovsdb' })).toBe(1);
  });

  it('is 404 when no metrics were configured', async () => {
    await start();
    expect((await get('/metrics')).status).toBe(404);
  });
});

describe('HTTP hygiene', () => {
  it('404 for unknown paths, 405 with Allow for other methods, 413 for bodies', async () => {
    await start({ metrics: new Metrics({ version: 't', defaultMetrics: false }) });
    const missing = await get('/nope');
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toBe('application/json; charset=utf-8');
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await get('/readyz', { method });
      expect(r.status, method).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
    const withBody = await get('/healthz', { headers: { 'content-type': 'text/plain', 'content-length': '5' }, body: 'hello' });
    expect(withBody.status).toBe(413);
    expect(withBody.headers.connection).toBe('close');
    const chunked = await get('/readyz', { headers: { 'transfer-encoding': 'chunked' }, body: 'hello' });
    expect(chunked.status).toBe(413);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('survives malformed requests on raw sockets', async () => {
    await start();
    const garbage = [
      'GARBAGE\r\n\r\n',
      '\x00\x01\x02\xff\xfe\r\n\r\n',
      'GET /healthz HTTP/9.9\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'GET /healthz HTTP/1.1\r\nBad Header Without Colon\r\n\r\n',
      'GET /healthz HTTP/1.1\r\n\r\n', // HTTP/1.1 without Host
    ];
    for (const bytes of garbage) {
      const r = await raw(Buffer.from(bytes, 'latin1'));
      expect(r.closed, JSON.stringify(bytes)).toBe(true);
      expect(r.text, JSON.stringify(bytes)).toMatch(/^HTTP\/1\.1 4\d\d /);
    }
    const huge = await raw(`GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge.text).toMatch(/^HTTP\/1\.1 431 /);
    // An abrupt reset mid-request must not hurt either.
    const port = server!.address.port;
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.write('GET /heal');
        s.resetAndDestroy();
        resolve();
      });
      s.on('error', () => undefined);
    });
    expect((await get('/healthz')).status).toBe(200);
  });

  it('closes a slowloris connection after headersTimeout', async () => {
    await start({ limits: { headersTimeoutMs: 300 } });
    const started = Date.now();
    const r = await raw('GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ', 3000);
    expect(r.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('rejects with HEALTH_LISTEN when the port is taken', async () => {
    const first = await start();
    const err = await startHealthServer({ host: '127.0.0.1', port: first.address.port, logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CodedError);
    expect((err as CodedError).code).toBe('HEALTH_LISTEN');
  });

  it('close() completes with an idle keep-alive connection open', async () => {
    const s = await start();
    const port = s.address.port;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('data', () => { resolve(); }).write('GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n'));
    const t0 = Date.now();
    await s.close();
    server = undefined;
    expect(Date.now() - t0).toBeLessThan(1500);
    socket.destroy();
  });
});

/**
 * A client in a worker thread, independent of the main thread, which runs a CPU-heavy but yielding
 * workload (10 ms slices) while serving. The main thread counts its slices in shared memory; the client
 * records how many slices ran while each request was outstanding. That count, not wall time (which a
 * loaded CI machine stretches), says whether the server answers between slices or only after the work.
 */
const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function once(path) {
  return new Promise((resolve, reject) => {
    const slices = new Int32Array(workerData.slices);
    const before = Atomics.load(slices, 0);
    http.get({ host: '127.0.0.1', port: workerData.port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ path, status: res.statusCode, slices: Atomics.load(slices, 0) - before }));
    }).on('error', reject);
  });
}
(async () => {
  const results = [];
  for (let i = 0; i < 30; i++) {
    results.push(await once(['/healthz', '/readyz', '/livez', '/metrics'][i % 4]));
    await new Promise((r) => setTimeout(r, 10));
  }
  agent.destroy();
  parentPort.postMessage(results);
})().catch((err) => parentPort.postMessage({ error: String(err) }));
`;

describe('responsiveness', () => {
  it('answers between the slices of a CPU-heavy yielding workload on the main thread', async () => {
    await start({ metrics: new Metrics({ version: 't' }), checks: { ovsdb: () => ({ ok: true, detail: '' }) } });
    const shared = new SharedArrayBuffer(4);
    const counter = new Int32Array(shared);
    const worker = new Worker(CLIENT, { eval: true, workerData: { port: server!.address.port, slices: shared } });
    const state = { done: false };
    let slices = 0;
    const results = new Promise<{ path: string; status: number; slices: number }[] | { error: string }>((resolve, reject) => {
      worker.once('message', (m) => {
        state.done = true;
        resolve(m);
      });
      worker.once('error', (e) => {
        state.done = true;
        reject(e);
      });
    });
    while (!state.done) {
      const sliceEnd = performance.now() + 10;
      let x = 0;
      while (performance.now() < sliceEnd) x += Math.sqrt(x + 1);
      slices++;
      Atomics.add(counter, 0, 1);
      await new Promise((r) => setImmediate(r));
    }
    const out = await results;
    await worker.terminate();
    expect('error' in out ? out.error : undefined).toBeUndefined();
    const list = out as { path: string; status: number; slices: number }[];
    expect(list).toHaveLength(30);
    expect(slices).toBeGreaterThan(10); // the workload really ran alongside
    for (const r of list) {
      expect(r.status, r.path).toBe(200);
      // A request is read in the turn after the slice it arrived in and answered in the next few; a
      // server blocked behind the workload would see every remaining slice go by.
      expect(r.slices, `${r.path} waited ${r.slices} slices`).toBeLessThanOrEqual(10);
    }
  });
});
