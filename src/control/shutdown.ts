import type { Logger } from 'pino';
import { describeError } from '../errors.js';

/** Something the daemon started, and how to stop it. */
export interface Stoppable {
  readonly name: string;
  stop(): Promise<void> | void;
}

/**
 * The daemon's shutdown: what start-up acquired is pushed as it is acquired, and `stopAll` stops it in
 * reverse order, one at a time, so that nothing is stopped while something started after it still
 * uses it. A step that fails is logged and the next one still runs.
 */
export class ShutdownStack {
  private readonly steps: Stoppable[] = [];
  private readonly log: Logger;

  constructor(logger: Logger) {
    this.log = logger;
  }

  push(name: string, stop: () => Promise<void> | void): void {
    this.steps.push({ name, stop });
  }

  /** Stops everything pushed so far, last pushed first; resolves when all steps have run. */
  async stopAll(): Promise<void> {
    for (let step = this.steps.pop(); step !== undefined; step = this.steps.pop()) {
      try {
        await step.stop();
      } catch (err) {
        this.log.warn({ err: describeError(err) }, `error while stopping the ${step.name}`);
      }
    }
  }
}

/**
 * Resolves when `work` settles (true) or after `ms` (false), whichever comes first; `work` keeps
 * running. Rejects when `work` does.
 */
export function boundedWait(work: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      resolve(false);
    }, ms);
    timer.unref();
    work.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
