import { createHistogram } from 'node:perf_hooks';
import type * as PromClient from 'prom-client';
import registryModule from 'prom-client/lib/registry.js';
import counterModule from 'prom-client/lib/counter.js';
import gaugeModule from 'prom-client/lib/gauge.js';
import histogramModule from 'prom-client/lib/histogram.js';
import processStartTime from 'prom-client/lib/metrics/processStartTime.js';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap.js';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import processResources from 'prom-client/lib/metrics/processResources.js';
import processHandles from 'prom-client/lib/metrics/processHandles.js';
import processRequests from 'prom-client/lib/metrics/processRequests.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js';
import version from 'prom-client/lib/metrics/version.js';
import gc from 'prom-client/lib/metrics/gc.js';

/*
 * The parts of prom-client the daemon uses, loaded file by file (docs/platform.md §6). prom-client's index
 * also loads the Pushgateway and the cluster aggregator, which bring node:https, tls, OpenSSL and zlib, and
 * its `process_cpu_*` default metric loads @opentelemetry/api for exemplars: 17 MB of RSS together, for
 * nothing a daemon serving /metrics uses. prom-client has no `exports` map, so its lib files are public
 * paths; ./prom-lib.d.ts gives them the index's types. Imported statically, they go into the bundle
 * (scripts/package/bundle.mjs): 20 CommonJS files fewer to resolve and compile at start.
 */
export const Registry = registryModule;
export const Counter = counterModule;
export const Gauge = gaugeModule;
export const Histogram = histogramModule;
export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;

/**
 * prom-client's default metrics (`lib/defaultMetrics.js`) but `processCpuTotal` and `eventLoopLag`, which
 * {@link processCpuMetrics} and {@link eventLoopLagMetrics} replace.
 */
const DEFAULT_METRICS = {
  processStartTime,
  osMemoryHeap,
  processOpenFileDescriptors,
  processMaxFileDescriptors,
  processResources,
  processHandles,
  processRequests,
  heapSizeAndUsed,
  heapSpacesSizeAndUsed,
  version,
  gc,
} as const;

/**
 * `process_cpu_user_seconds_total`, `process_cpu_system_seconds_total` and `process_cpu_seconds_total`,
 * named and computed as prom-client's `processCpuTotal` does (without its exemplars), so dashboards see
 * the same series.
 */
function processCpuMetrics(register: Registry): void {
  const registers = [register];
  let last = process.cpuUsage();
  const user = new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const now = process.cpuUsage();
      const userMicros = now.user - last.user;
      const systemMicros = now.system - last.system;
      last = now;
      user.inc(userMicros / 1e6);
      system.inc(systemMicros / 1e6);
      total.inc((userMicros + systemMicros) / 1e6);
    },
  });
  const system = new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers });
  const total = new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers });
}

/**
 * prom-client's `nodejs_eventloop_lag_*` series, with its names and help, from samples the caller records
 * (the liveness heartbeat's lateness, src/health/liveness.ts) instead of a `monitorEventLoopDelay` timer of
 * its own: that timer woke an idle daemon 10 times a second (docs/platform.md §7). Unlike prom-client's,
 * whose samples are whole intervals (about the sampling period when all is well), a sample here is the
 * lateness beyond the period, so 0 means on time. The min/max/mean/stddev/percentiles cover the samples
 * since the previous scrape (a scrape without new samples repeats the last values); `nodejs_eventloop_lag_seconds`
 * is measured at scrape time, as prom-client does, and awaited so that the scrape reports it.
 * Returns the recorder.
 */
export function eventLoopLagMetrics(register: Registry): (lagMs: number) => void {
  const histogram = createHistogram();
  const registers = [register];
  // Registered first: the registry reads its series in order, and this collect() sets the others.
  const lag = new Gauge({
    name: 'nodejs_eventloop_lag_seconds',
    help: 'Lag of event loop in seconds.',
    registers,
    aggregator: 'average',
    collect() {
      if (histogram.count > 0) {
        // The histogram holds nanoseconds.
        stats.min.set(histogram.min / 1e9);
        stats.max.set(histogram.max / 1e9);
        stats.mean.set(histogram.mean / 1e9);
        stats.stddev.set(histogram.stddev / 1e9);
        stats.p50.set(histogram.percentile(50) / 1e9);
        stats.p90.set(histogram.percentile(90) / 1e9);
        stats.p99.set(histogram.percentile(99) / 1e9);
        histogram.reset();
      }
      const start = process.hrtime.bigint();
      return new Promise<void>((resolve) => {
        setImmediate(() => {
          lag.set(Number(process.hrtime.bigint() - start) / 1e9);
          resolve();
        });
      });
    },
  });
  const stats = {
    min: new Gauge({ name: 'nodejs_eventloop_lag_min_seconds', help: 'The minimum recorded event loop delay.', registers, aggregator: 'min' }),
    max: new Gauge({ name: 'nodejs_eventloop_lag_max_seconds', help: 'The maximum recorded event loop delay.', registers, aggregator: 'max' }),
    mean: new Gauge({ name: 'nodejs_eventloop_lag_mean_seconds', help: 'The mean of the recorded event loop delays.', registers, aggregator: 'average' }),
    stddev: new Gauge({ name: 'nodejs_eventloop_lag_stddev_seconds', help: 'The standard deviation of the recorded event loop delays.', registers, aggregator: 'average' }),
    p50: new Gauge({ name: 'nodejs_eventloop_lag_p50_seconds', help: 'The 50th percentile of the recorded event loop delays.', registers, aggregator: 'average' }),
    p90: new Gauge({ name: 'nodejs_eventloop_lag_p90_seconds', help: 'The 90th percentile of the recorded event loop delays.', registers, aggregator: 'average' }),
    p99: new Gauge({ name: 'nodejs_eventloop_lag_p99_seconds', help: 'The 99th percentile of the recorded event loop delays.', registers, aggregator: 'average' }),
  };
  // A RecordableHistogram takes integers >= 1.
  return (lagMs) => {
    histogram.record(Math.max(1, Math.round(lagMs * 1e6)));
  };
}

/** prom-client's `collectDefaultMetrics` into `register`, with the same series; returns the event-loop lag recorder. */
export function collectDefaultMetrics(register: Registry): (lagMs: number) => void {
  processCpuMetrics(register);
  for (const [name, metric] of Object.entries(DEFAULT_METRICS)) {
    if (name === 'processResources' && typeof process.getActiveResourcesInfo !== 'function') continue;
    metric(register, { register });
  }
  return eventLoopLagMetrics(register);
}
