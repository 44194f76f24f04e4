import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BoundedLabel, Metrics, OTHER_LABEL } from '../../../src/health/metrics.js';
import { familyOf, parseExposition, sampleValue } from './exposition.js';

describe('parseExposition (the checker itself)', () => {
  it('rejects lines that are not exposition format', () => {
    expect(() => parseExposition('foo{a="b" 1\n')).toThrow(/line 1/);
    expect(() => parseExposition('# TYPE x countr\n')).toThrow(/line 1/);
    expect(() => parseExposition('x 1\nbad-name 2\n')).toThrow(/line 2/);
    expect(() => parseExposition('x{a="unterminated} 1\n')).toThrow();
  });
  it('accepts the forms the format allows', () => {
    const exp = parseExposition('# HELP x h\n# TYPE x gauge\nx 1\nx{a="q\\"uote",b="n\\nl"} +Inf 123\ny NaN\n');
    expect(exp.samples).toHaveLength(3);
    expect(exp.samples[1]!.labels).toEqual({ a: 'q"uote', b: 'n\nl' });
  });
});

describe('Metrics', () => {
  it('renders valid exposition with HELP and TYPE for every ovs_xapi_sync_ family', async () => {
    const m = new Metrics({ version: '1.2.3' });
    m.observeReconcile('changed', 0.042, { 'iface-id': 2, fail_mode: 1 });
    m.ovsdbTransaction('committed');
    m.xapiCall('VIF.get_record', 'failure', 0.01, 'UUID_INVALID');
    m.xapiRelogin();
    m.ovsdbReconnect();
    m.observeEventLag('xapi', 0.3);
    m.setReplicaRows('Interface', 12);
    m.setXapiCacheEntries('VIF', 5);
    m.setReadiness({ ovsdb: { ok: true }, xapi: { ok: false } });
    const { body, contentType } = await m.render();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const exp = parseExposition(body);

    const ours = exp.samples.filter((s) => s.name.startsWith('ovs_xapi_sync_'));
    expect(ours.length).toBeGreaterThan(10);
    for (const s of ours) {
      const family = familyOf(s.name, exp.types);
      expect(family, `TYPE for ${s.name}`).toBeDefined();
      expect(exp.help.get(family!), `HELP for ${s.name}`).toBeTruthy();
    }
    for (const [name, type] of exp.types) {
      if (!name.startsWith('ovs_xapi_sync_')) continue;
      if (type === 'counter') expect(name).toMatch(/_total$/);
      if (type === 'histogram') expect(name).toMatch(/_seconds$/);
    }
    // Default process metrics are present, unprefixed.
    expect(exp.types.has('process_cpu_seconds_total')).toBe(true);
    expect(exp.types.has('nodejs_eventloop_lag_seconds')).toBe(true);

    expect(sampleValue(exp, 'ovs_xapi_sync_build_info', { version: '1.2.3' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_reconcile_passes_total', { result: 'changed' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_reconcile_passes_total', { result: 'converged' })).toBe(0);
    expect(sampleValue(exp, 'ovs_xapi_sync_reconcile_duration_seconds_count')).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_changes_written_total', { key: 'iface-id' })).toBe(2);
    expect(sampleValue(exp, 'ovs_xapi_sync_changes_written_total', { key: 'fail_mode' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_ovsdb_transactions_total', { result: 'committed' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_xapi_calls_total', { method: 'VIF.get_record', outcome: 'failure' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_xapi_call_errors_total', { code: 'UUID_INVALID' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_xapi_relogins_total')).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_ovsdb_reconnects_total')).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_event_lag_seconds_count', { source: 'xapi' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_ovsdb_replica_rows', { table: 'Interface' })).toBe(12);
    expect(sampleValue(exp, 'ovs_xapi_sync_xapi_cache_entries', { cache: 'VIF' })).toBe(5);
    expect(sampleValue(exp, 'ovs_xapi_sync_ready')).toBe(0);
    expect(sampleValue(exp, 'ovs_xapi_sync_readiness_check', { check: 'ovsdb' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_readiness_check', { check: 'xapi' })).toBe(0);
  });

  it('counts each observeReconcile once', async () => {
    const m = new Metrics({ version: 't', defaultMetrics: false });
    const before = parseExposition((await m.render()).body);
    expect(sampleValue(before, 'ovs_xapi_sync_reconcile_passes_total', { result: 'converged' })).toBe(0);
    m.observeReconcile('converged', 0.001);
    m.observeReconcile('converged', 0.002, new Map([['vm-id', 3]]));
    m.observeReconcile('failed', 0.5);
    const after = parseExposition((await m.render()).body);
    expect(sampleValue(after, 'ovs_xapi_sync_reconcile_passes_total', { result: 'converged' })).toBe(2);
    expect(sampleValue(after, 'ovs_xapi_sync_reconcile_passes_total', { result: 'failed' })).toBe(1);
    expect(sampleValue(after, 'ovs_xapi_sync_changes_written_total', { key: 'vm-id' })).toBe(3);
    expect(sampleValue(after, 'ovs_xapi_sync_reconcile_duration_seconds_count')).toBe(3);
  });

  it('ignores nonsense amounts instead of throwing', async () => {
    const m = new Metrics({ version: 't', defaultMetrics: false });
    m.observeReconcile('changed', Number.NaN, { k: -1, j: Number.POSITIVE_INFINITY });
    m.xapiCall('VM.get_record', 'success', -3);
    m.setReplicaRows('Bridge', Number.NaN);
    const exp = parseExposition((await m.render()).body);
    expect(sampleValue(exp, 'ovs_xapi_sync_reconcile_passes_total', { result: 'changed' })).toBe(1);
    expect(sampleValue(exp, 'ovs_xapi_sync_reconcile_duration_seconds_count')).toBe(0);
    expect(exp.samples.some((s) => s.name === 'ovs_xapi_sync_changes_written_total')).toBe(false);
  });

  it('runs scrape hooks before rendering and survives a throwing one', async () => {
    const m = new Metrics({ version: 't', defaultMetrics: false });
    let rows = 1;
    m.onScrape(() => {
      throw new Error('boom');
    });
    m.onScrape(() => {
      m.setReplicaRows('Port', rows++);
    });
    await m.render();
    const exp = parseExposition((await m.render()).body);
    expect(sampleValue(exp, 'ovs_xapi_sync_ovsdb_replica_rows', { table: 'Port' })).toBe(2);
  });

  it('reports the recorded event-loop lateness as the nodejs_eventloop_lag_* series of prom-client', async () => {
    const m = new Metrics({ version: 't' });
    for (const ms of [2, 4, 6, 8, 250]) m.recordEventLoopLag(ms);
    const first = parseExposition((await m.render()).body);
    expect(sampleValue(first, 'nodejs_eventloop_lag_min_seconds')).toBeCloseTo(0.002, 4);
    expect(sampleValue(first, 'nodejs_eventloop_lag_max_seconds')).toBeCloseTo(0.25, 2);
    expect(sampleValue(first, 'nodejs_eventloop_lag_p50_seconds')).toBeCloseTo(0.006, 4);
    expect(sampleValue(first, 'nodejs_eventloop_lag_mean_seconds')).toBeCloseTo(0.054, 3);
    expect(sampleValue(first, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    // No sample since: the last values stay. New samples: only they count.
    const again = parseExposition((await m.render()).body);
    expect(sampleValue(again, 'nodejs_eventloop_lag_max_seconds')).toBeCloseTo(0.25, 2);
    m.recordEventLoopLag(1);
    const third = parseExposition((await m.render()).body);
    expect(sampleValue(third, 'nodejs_eventloop_lag_max_seconds')).toBeCloseTo(0.001, 4);
    for (const name of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
      expect(third.help.get(`nodejs_eventloop_lag_${name}_seconds`), name).toBeTruthy();
    }
  });

  it('keeps separate registries per instance', async () => {
    const a = new Metrics({ version: 'a', defaultMetrics: false });
    const b = new Metrics({ version: 'b', defaultMetrics: false });
    a.xapiRelogin();
    const expB = parseExposition((await b.render()).body);
    expect(sampleValue(expB, 'ovs_xapi_sync_xapi_relogins_total')).toBe(0);
  });
});

describe('BoundedLabel', () => {
  const cases: [string, string][] = [
    ['VIF.get_record', 'VIF.get_record'],
    ['SESSION_INVALID', 'SESSION_INVALID'],
    ['iface-id', 'iface-id'],
    ['0a1b2c3d-0000-4000-8000-000000000000', OTHER_LABEL],
    ['OpaqueRef:0a1b2c3d-0000-4000-8000-000000000000', OTHER_LABEL],
    ['has space', OTHER_LABEL],
    ['', OTHER_LABEL],
    ['x'.repeat(200), OTHER_LABEL],
  ];
  it.each(cases)('%s → %s', (raw, expected) => {
    expect(new BoundedLabel(10).value(raw)).toBe(expected);
  });

  it('never admits more than its budget of distinct values', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 60 }), fc.integer({ min: 1, max: 20 }), (values, max) => {
        const label = new BoundedLabel(max);
        const out = new Set(values.map((v) => label.value(v)));
        out.delete(OTHER_LABEL);
        return out.size <= max;
      }),
    );
  });
});
