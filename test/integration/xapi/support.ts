import pino from 'pino';
import type { Simulator } from '../../../src/sim/index.js';
import { createXapiClient, type XapiClient } from '../../../src/xapi/client.js';
import { TEST_XAPI_PROTOCOL } from '../../helpers/host-env.js';
import type { XapiWatcher } from '../../../src/xapi/watcher.js';

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

/** The VIF and VM uuids and bridge names a test wants followed, as a whole. */
export interface InterestSet {
  readonly vifs: Iterable<string>;
  readonly vms: Iterable<string>;
  readonly bridges: Iterable<string>;
}

const followed = new WeakMap<XapiWatcher, { vifs: Set<string>; vms: Set<string>; bridges: Set<string> }>();

/** Makes `watcher` follow exactly `interest`, through `changeInterest` as production does. */
export function setInterest(watcher: XapiWatcher, interest: InterestSet): void {
  const before = followed.get(watcher) ?? { vifs: new Set<string>(), vms: new Set<string>(), bridges: new Set<string>() };
  const next = { vifs: new Set(interest.vifs), vms: new Set(interest.vms), bridges: new Set(interest.bridges) };
  const minus = (a: ReadonlySet<string>, b: ReadonlySet<string>): string[] => [...a].filter((k) => !b.has(k));
  watcher.changeInterest({
    addVifs: minus(next.vifs, before.vifs),
    removeVifs: minus(before.vifs, next.vifs),
    addVms: minus(next.vms, before.vms),
    removeVms: minus(before.vms, next.vms),
    addBridges: minus(next.bridges, before.bridges),
    removeBridges: minus(before.bridges, next.bridges),
  });
  followed.set(watcher, next);
}
