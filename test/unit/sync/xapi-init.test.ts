import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { waitForXapiInit, xapiInitCookiePath } from '../../../src/sync/xapi-init.js';
import { ManualClock } from '../../helpers/manual-clock.js';

const logger = pino({ level: 'silent' });
/** File-system answers take their time on a loaded machine; this bounds the wait, not the test's pace. */
const WAIT = { timeout: 10_000 };

/** The wait reads the file system between polls: let it arm its next poll before time moves on. */
async function poll(clock: ManualClock, ms: number): Promise<void> {
  await vi.waitFor(() => {
    expect(clock.pending).toBe(1);
  }, WAIT);
  await clock.advance(ms);
}

function root(): string {
  const dir = mkdtempSync(join(tmpdir(), 'xapi-init-'));
  mkdirSync(join(dir, 'var', 'run'), { recursive: true });
  return dir;
}

describe('the XAPI init cookie', () => {
  it('lives under the root prefix', () => {
    expect(xapiInitCookiePath('')).toBe('/var/run/xapi_init_complete.cookie');
    expect(xapiInitCookiePath('/r')).toBe('/r/var/run/xapi_init_complete.cookie');
  });

  it('resolves true at once when the cookie is there', async () => {
    const dir = root();
    writeFileSync(xapiInitCookiePath(dir), '');
    await expect(waitForXapiInit({ rootPrefix: dir, logger, signal: new AbortController().signal, clock: new ManualClock() })).resolves.toBe(true);
  });

  it('polls until the cookie appears', async () => {
    const dir = root();
    const clock = new ManualClock();
    const waiting = waitForXapiInit({ rootPrefix: dir, logger, signal: new AbortController().signal, clock });
    let result: boolean | undefined;
    void waiting.then((ok) => (result = ok));
    for (let i = 0; i < 3; i++) await poll(clock, 1000);
    expect(result).toBeUndefined();
    // Written only once the wait has looked and armed its next poll, so that this poll is the one
    // that finds it (a look still in flight could otherwise find it first).
    await poll(clock, 0);
    writeFileSync(xapiInitCookiePath(dir), '');
    await clock.advance(1000);
    await expect(waiting).resolves.toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('resolves false when the timeout passes or the signal aborts first, leaving no timer', async () => {
    const dir = root();
    const clock = new ManualClock();
    let timedOut: boolean | undefined;
    void waitForXapiInit({ rootPrefix: dir, logger, signal: new AbortController().signal, clock, timeoutMs: 2500 }).then((ok) => (timedOut = ok));
    await poll(clock, 1000);
    await poll(clock, 1000);
    expect(timedOut).toBeUndefined();
    await poll(clock, 500);
    await vi.waitFor(() => {
      expect(timedOut).toBe(false);
    }, WAIT);

    const stop = new AbortController();
    const aborted = waitForXapiInit({ rootPrefix: dir, logger, signal: stop.signal, clock });
    await poll(clock, 1000);
    await vi.waitFor(() => {
      expect(clock.pending).toBe(1);
    }, WAIT);
    stop.abort();
    await expect(aborted).resolves.toBe(false);
    expect(clock.pending).toBe(0);
  });
});
