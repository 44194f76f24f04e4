import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

/*
 * The parts of prom-client the daemon uses, loaded file by file (docs/platform.md §6). prom-client's index
 * also loads the Pushgateway and the cluster aggregator, which bring node:https, tls, OpenSSL and zlib, and
 * its `process_cpu_*` default metric loads @opentelemetry/api for exemplars: 17 MB of RSS together, for
 * nothing a daemon serving /metrics uses. prom-client has no `exports` map, so its lib files are public
 * paths; their types are the index's.
 */
const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry;
export const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter;
export const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge;
export const Histogram = load('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Registry = PromClient.Registry;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;

type DefaultMetric = (register: Registry, config: PromClient.DefaultMetricsCollectorConfiguration<PromClient.RegistryContentType>) => void;

/** prom-client's default metrics (`lib/defaultMetrics.js`) but `processCpuTotal`, which {@link processCpuMetrics} replaces. */
const DEFAULT_METRICS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
] as const;

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

/** prom-client's `collectDefaultMetrics` into `register`, with the same series and options. */
export function collectDefaultMetrics(register: Registry, options: { readonly eventLoopMonitoringPrecision: number }): void {
  processCpuMetrics(register);
  for (const name of DEFAULT_METRICS) {
    if (name === 'processResources' && typeof process.getActiveResourcesInfo !== 'function') continue;
    (load(`prom-client/lib/metrics/${name}`) as DefaultMetric)(register, { register, ...options });
  }
}
