import type { Logger } from 'pino';
import type { BackoffPolicy } from '../time/backoff.js';
import { createXapiTransport, type XapiProtocolChoice } from './protocol-fallback.js';
import { XapiSession } from './session.js';
import { parseXapiUrl } from './transport.js';
import { XapiWatcher } from './watcher.js';

export interface XapiClientOptions {
  /** `unix:PATH` | `http://HOST[:PORT]` | `https://HOST[:PORT]` (default dom0 socket: DEFAULT_XAPI_URL). */
  readonly url: string;
  /** `auto`: JSON-RPC, falling back to XML-RPC once when the host refuses it (./protocol-fallback.ts). */
  readonly protocol: XapiProtocolChoice;
  readonly user: string;
  readonly password: string;
  readonly caFile?: string | undefined;
  readonly insecure?: boolean | undefined;
  readonly callTimeoutMs: number;
  readonly eventTimeoutSec: number;
  readonly lookupBatchSize: number;
  readonly logger: Logger;
  readonly maxResponseBytes?: number;
  readonly backoff?: BackoffPolicy;
  /** Delay before a login is retried after SESSION_AUTHENTICATION_FAILED (default 30 s). */
  readonly authRetryDelayMs?: number;
  /** See `XapiWatcherOptions`. */
  readonly crowdedNetworkVifs?: number;
  readonly networkRefreshMs?: number;
  /** The inventory's INSTALLATION_UUID: this host (see `XapiWatcherOptions.thisHostUuid`). */
  readonly thisHostUuid?: string | undefined;
}

/** What the composition root holds: the session (calls, metrics hooks, readiness) and the watcher (cache). */
export interface XapiClient {
  readonly session: XapiSession;
  readonly watcher: XapiWatcher;
  start(signal?: AbortSignal): void;
  /** Stops the watcher (no timers left), logs out, closes connections. */
  close(): Promise<void>;
}

/** Builds transport → session → watcher. Throws `XAPI_URL_INVALID` for a bad URL or CA file. */
export function createXapiClient(options: XapiClientOptions): XapiClient {
  // The caller hands in the component logger (log.ts `component('xapi')`), so `vlog/set` reaches it.
  const logger = options.logger;
  const transport = createXapiTransport(options.protocol, {
    endpoint: parseXapiUrl(options.url),
    logger,
    timeoutMs: options.callTimeoutMs,
    maxResponseBytes: options.maxResponseBytes,
    caFile: options.caFile,
    insecure: options.insecure,
  });
  const session = new XapiSession({
    transport,
    user: options.user,
    password: options.password,
    logger,
    backoff: options.backoff,
    authRetryDelayMs: options.authRetryDelayMs,
    callTimeoutMs: options.callTimeoutMs,
  });
  const watcher = new XapiWatcher({
    caller: session,
    logger,
    eventTimeoutSec: options.eventTimeoutSec,
    lookupBatchSize: options.lookupBatchSize,
    ...(options.crowdedNetworkVifs !== undefined ? { crowdedNetworkVifs: options.crowdedNetworkVifs } : {}),
    ...(options.networkRefreshMs !== undefined ? { networkRefreshMs: options.networkRefreshMs } : {}),
    backoff: options.backoff,
    thisHostUuid: options.thisHostUuid,
  });
  return {
    session,
    watcher,
    start(signal) {
      watcher.start(signal);
    },
    async close() {
      await watcher.stop();
      await session.close();
    },
  };
}
