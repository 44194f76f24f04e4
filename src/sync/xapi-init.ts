import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { delay, realClock, type Clock } from '../time/clock.js';

/** How often the cookie is looked for, as `xapi-wait-init-complete` does. */
const COOKIE_POLL_MS = 1000;

/** `/var/run/xapi_init_complete.cookie`: touched by xapi as its last start-up step (docs/xapi.md §7). */
export function xapiInitCookiePath(rootPrefix: string): string {
  return join(rootPrefix || '/', 'var', 'run', 'xapi_init_complete.cookie');
}

export interface XapiInitWait {
  readonly rootPrefix: string;
  readonly logger: Logger;
  /** Resolves false at once when it aborts. */
  readonly signal: AbortSignal;
  /** Give up (resolve false) after this long; default never. */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
  readonly pollMs?: number;
}

/**
 * Waits for xapi's init-complete cookie (docs/xapi.md §7), polling once a second like
 * `xapi-wait-init-complete`. Resolves true once it exists, false when the signal aborts or the timeout
 * passes first. Logs once when it starts waiting, and once when the wait ends well.
 */
export async function waitForXapiInit(options: XapiInitWait): Promise<boolean> {
  const { logger, signal } = options;
  const clock = options.clock ?? realClock;
  const path = xapiInitCookiePath(options.rootPrefix);
  const deadline = clock.now() + (options.timeoutMs ?? Infinity);
  let announced = false;
  while (!signal.aborted) {
    try {
      await access(path);
      if (announced) logger.info({ path }, 'XAPI init complete');
      return true;
    } catch {
      if (!announced) logger.info({ path }, 'waiting for XAPI to complete its start-up');
      announced = true;
    }
    if (clock.now() >= deadline) return false;
    try {
      await delay(clock, Math.min(options.pollMs ?? COOKIE_POLL_MS, Math.max(0, deadline - clock.now())), signal);
    } catch {
      return false;
    }
  }
  return false;
}
