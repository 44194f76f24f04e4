export { createXapiClient, type XapiClient, type XapiClientOptions } from './client.js';
export { XapiCache, type XapiChange, type XapiLookup } from './cache.js';
export { XapiError, XapiTransportError } from './errors.js';
export {
  buildBridgeFilters,
  buildUuidFilters,
  getPool,
  getThisHost,
  isFilterableBridgeName,
  isUuid,
  lookupNetworksByBridge,
  lookupVifsByUuid,
  lookupVmsByUuid,
  DEFAULT_LOOKUP_BATCH_SIZE,
} from './lookups.js';
export type { HostRecord, NetworkRecord, OtherConfig, PoolRecord, VifRecord, VmRecord } from './records.js';
export { XapiSession, type XapiCallEvent, type XapiCaller, type XapiSessionOptions } from './session.js';
export { createHttpTransport, DEFAULT_XAPI_URL, parseXapiUrl, type XapiEndpoint, type XapiTransport } from './transport.js';
export { XapiWatcher, type XapiInterestDelta, type XapiWatcherOptions, type XapiWatcherPhase, type XapiWatcherStats } from './watcher.js';
