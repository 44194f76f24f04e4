// Types for the prom-client lib files src/health/prom.ts imports by path: the index's, which re-exports them.
declare module 'prom-client/lib/registry.js' {
  import type { Registry } from 'prom-client';
  const registry: typeof Registry;
  export default registry;
}
declare module 'prom-client/lib/counter.js' {
  import type { Counter } from 'prom-client';
  const counter: typeof Counter;
  export default counter;
}
declare module 'prom-client/lib/gauge.js' {
  import type { Gauge } from 'prom-client';
  const gauge: typeof Gauge;
  export default gauge;
}
declare module 'prom-client/lib/histogram.js' {
  import type { Histogram } from 'prom-client';
  const histogram: typeof Histogram;
  export default histogram;
}
/** One of prom-client's default metrics (`lib/metrics/*.js`): registers its series in `register`. */
declare module 'prom-client/lib/metrics/*.js' {
  import type { DefaultMetricsCollectorConfiguration, Registry, RegistryContentType } from 'prom-client';
  const metric: (register: Registry, config: DefaultMetricsCollectorConfiguration<RegistryContentType>) => void;
  export default metric;
}
