/**
 * The one clock of the daemon. Every timer-driven part (OVSDB session and probes, XAPI session and
 * watcher, the reconcile scheduler) takes a `Clock`, so that its state machine can be driven in scripted
 * time by `ManualClock` (test/helpers/manual-clock.ts) instead of sleeping. Handles are opaque.
 *
 * A delay of 0 runs on the next turn of the event loop (setImmediate) rather than through a timer, whose
 * minimum of 1 ms would add to every port's latency; work scheduled in the same turn still coalesces.
 */
export interface Clock {
  /** Milliseconds on a monotonic-enough scale; only differences are meaningful. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

interface RealHandle {
  immediate?: NodeJS.Immediate;
  timeout?: NodeJS.Timeout;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms): RealHandle => (ms <= 0 ? { immediate: setImmediate(fn) } : { timeout: setTimeout(fn, ms) }),
  clearTimeout: (handle) => {
    const h = handle as RealHandle | undefined;
    if (h?.immediate !== undefined) clearImmediate(h.immediate);
    if (h?.timeout !== undefined) clearTimeout(h.timeout);
  },
};

/**
 * Monotonic time, and timers that do not keep the process alive: for periodic self-checks (the event-loop
 * probe of src/health/liveness.ts), which must never be the reason a daemon that is shutting down lingers.
 */
export const backgroundClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => {
    clearTimeout(handle as NodeJS.Timeout | undefined);
  },
};

/** Resolves after `ms` on `clock`, or rejects with `signal.reason` when the signal aborts first. */
export function delay(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason as Error);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
