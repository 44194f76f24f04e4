import type { Logger } from 'pino';
import type { Clock } from '../time/clock.js';
import type { XapiCache } from './cache.js';
import type { XapiCaller } from './session.js';

/**
 * What the `XapiWatcher` facade hands each of its parts (follower, lookup batcher, deletion audit,
 * crowded networks, anticipation): the one cache they share, the session they call XAPI through, the
 * component logger and the one clock.
 */
export interface WatcherPartOptions {
  readonly cache: XapiCache;
  readonly caller: XapiCaller;
  readonly logger: Logger;
  readonly clock: Clock;
}
