/**
 * Issue 6 at daemon level: /readyz follows the peers (503 → 200 → 503 → 200 → 503 → 200 as XAPI
 * finishes starting, ovsdb-server dies and comes back, XAPI goes away and comes back) while /healthz
 * stays 200; /metrics is Prometheus text and counts what happened; repeated identical failures of a
 * peer are logged once, counted, and closed by one recovery line instead of a line per retry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, waitFor, type Daemon, type HostEnv, type LogLine } from '../../helpers/host-env.js';
import { FAST_ENV, probe, scrape, value, waitReadyz } from './helpers.js';

const P = 'ovs_xapi_sync_';
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const WARN = 40;
/** Retries that must have happened during an outage before it ends (each is a line without summarising). */
const RETRIES = 8;

describe('readiness, metrics and failure summaries against the real daemon', () => {
  let env: HostEnv;
  let daemon: Daemon;
  let base: string;

  beforeAll(async () => {
    // XAPI has not finished starting: the daemon must come up (health listening) but not be ready.
    env = await startHostEnv({ vms: 2, vifsPerVm: 1, xapiReady: false });
    await env.addBridges();
    daemon = env.startDaemon({ env: FAST_ENV });
    base = await daemon.healthUrl();
  });

  afterAll(async () => {
    await env.close();
  });

  it('is live but not ready while XAPI is still starting, naming the xapi check', async () => {
    const body = await waitReadyz(base, 503, 'initial 503');
    expect(body.status).toBe('not ready');
    expect(body.checks?.xapi?.ok).toBe(false);
    expect(body.checks?.xapi?.detail).toMatch(/XAPI idle, session not valid/);
    expect((await probe(base, '/livez')).status).toBe(200);
  });

  it('becomes ready once XAPI is up, with the readiness gauge at 1', async () => {
    env.writeXapiCookie();
    const body = await waitReadyz(base, 200, 'ready');
    expect(body.status).toBe('ok');
    for (const check of ['ovsdb', 'xapi', 'reconcile']) expect(body.checks?.[check]?.ok, check).toBe(true);
    const { exposition, contentType } = await scrape(base);
    expect(contentType).toMatch(/^text\/plain/);
    expect(value(exposition, `${P}ready`)).toBe(1);
    expect(value(exposition, `${P}readiness_check`, { check: 'ovsdb' })).toBe(1);
    expect(value(exposition, `${P}reconcile_passes_total`, { result: 'converged' })).toBeGreaterThan(0);
    // Default process metrics are exported too.
    expect(value(exposition, 'process_start_time_seconds')).toBeGreaterThan(0);
  });

  it('counts a reconcile pass and a committed transaction when a port is plugged', async () => {
    const before = (await scrape(base)).exposition;
    const vif = env.vifs[0]!;
    const name = await env.plugVif(vif);
    await waitFor(async () => (await env.getKey('Interface', name, 'external_ids', 'iface-id')) === vif.vifUuid, 10_000, 'iface-id');
    const after = await waitFor(async () => {
      const e = (await scrape(base)).exposition;
      return value(e, `${P}ovsdb_transactions_total`, { result: 'committed' }) > value(before, `${P}ovsdb_transactions_total`, { result: 'committed' }) ? e : undefined;
    }, 5000, 'a committed transaction in /metrics');
    expect(value(after, `${P}reconcile_passes_total`, { result: 'changed' })).toBeGreaterThan(value(before, `${P}reconcile_passes_total`, { result: 'changed' }));
    expect(value(after, `${P}changes_written_total`, { key: 'iface-id' })).toBeGreaterThan(value(before, `${P}changes_written_total`, { key: 'iface-id' }));
    expect(value(after, `${P}reconcile_duration_seconds_count`)).toBeGreaterThan(value(before, `${P}reconcile_duration_seconds_count`));
    await waitReadyz(base, 200, 'ready after the plug');
  });

  it('goes 503 naming ovsdb while ovsdb-server is down, summarises the reconnect attempts, and recovers', async () => {
    const from = daemon.logs.length;
    const ovsdbLines = (): LogLine[] => daemon.logs.slice(from).filter((l) => l.component === 'ovsdb');
    await env.db.kill('SIGKILL');
    const body = await waitReadyz(base, 503, 'ovsdb down');
    expect(body.checks?.ovsdb?.ok).toBe(false);
    expect(body.checks?.ovsdb?.detail).toMatch(new RegExp(`^ovsdb-server (?!monitoring)\\w+ \\(${escapeRegExp(env.db.remote)}\\)$`));
    expect(body.checks?.xapi?.ok).toBe(true);
    // Hold the outage until the daemon has retried many times (each retry is a debug line).
    await waitFor(() => ovsdbLines().filter((l) => /cannot establish/.test(l.msg ?? '')).length >= RETRIES, 15_000, `${RETRIES} reconnect attempts`);
    await env.db.restart();
    await waitReadyz(base, 200, 'ready after ovsdb-server restart');
    const recovery = await daemon.waitForLog((l) => l.component === 'ovsdb' && /recovered after \d+ failed attempts/.test(l.msg ?? ''), 5000);
    expect(recovery.failures).toBeGreaterThanOrEqual(RETRIES);
    const warns = ovsdbLines().filter((l) => l.level >= WARN);
    // "connection lost" + the first "cannot establish" (+ at most one summary), not one per attempt.
    expect(warns.length, warns.map((l) => l.msg).join('\n')).toBeLessThanOrEqual(3);
    const { exposition } = await scrape(base);
    expect(value(exposition, `${P}ovsdb_reconnects_total`)).toBeGreaterThanOrEqual(1);
    expect(value(exposition, `${P}ready`)).toBe(1);
  });

  it('goes 503 naming xapi while XAPI is down, logs the outage once, and recovers', async () => {
    const from = daemon.logs.length;
    const xapiLines = (): LogLine[] => daemon.logs.slice(from).filter((l) => l.component === 'xapi');
    await env.sim.faults.set({ down: true });
    const body = await waitReadyz(base, 503, 'xapi down');
    expect(body.checks?.xapi?.ok).toBe(false);
    expect(body.checks?.xapi?.detail).toMatch(/^XAPI (idle|syncing|live|down), session (not )?valid \(http:/);
    expect(body.checks?.xapi?.detail).not.toMatch(/^XAPI live, session valid/);
    expect(body.checks?.ovsdb?.ok).toBe(true);
    expect(value((await scrape(base)).exposition, `${P}ready`)).toBe(0);
    await waitFor(() => xapiLines().filter((l) => l.msg === 'XAPI unavailable').length >= RETRIES, 15_000, `${RETRIES} XAPI retries`);
    await env.sim.faults.set({ down: false });
    await waitReadyz(base, 200, 'ready after XAPI is back');
    const recovery = await daemon.waitForLog((l) => l.component === 'xapi' && l.msg === 'XAPI available again', 5000);
    expect(recovery.failures).toBeGreaterThanOrEqual(RETRIES);
    const warns = xapiLines().filter((l) => l.level >= WARN);
    expect(warns.filter((l) => l.msg?.startsWith('XAPI unavailable') === true), warns.map((l) => l.msg).join('\n')).toHaveLength(1);
    expect(warns.length, warns.map((l) => l.msg).join('\n')).toBeLessThanOrEqual(3);
  });

  it('answers unknown paths 404 and other methods 405', async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const post = await fetch(`${base}/readyz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toMatch(/GET/);
  });
});
