import pino from 'pino';
import type { Simulator } from '../../../src/sim/index.js';
import { createXapiClient, type XapiClient } from '../../../src/xapi/client.js';
import { TEST_XAPI_PROTOCOL } from '../../helpers/host-env.js';

/** Polls `predicate` every 5 ms; throws after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A silent XAPI client of the simulator, not started, with the options the watcher tests share. */
export function simClient(
  sim: Simulator,
  options: { protocol?: 'jsonrpc' | 'xmlrpc'; eventTimeoutSec?: number; crowdedNetworkVifs?: number; networkRefreshMs?: number } = {},
): XapiClient {
  return createXapiClient({
    url: sim.url ?? '',
    protocol: options.protocol ?? TEST_XAPI_PROTOCOL,
    user: '',
    password: '',
    callTimeoutMs: 5000,
    eventTimeoutSec: options.eventTimeoutSec ?? 30,
    lookupBatchSize: 100,
    logger: pino({ level: 'silent' }),
    ...(options.crowdedNetworkVifs !== undefined ? { crowdedNetworkVifs: options.crowdedNetworkVifs } : {}),
    ...(options.networkRefreshMs !== undefined ? { networkRefreshMs: options.networkRefreshMs } : {}),
  });
}
