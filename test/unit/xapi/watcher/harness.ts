import pino from 'pino';
import { Writable } from 'node:stream';
import { XapiWatcher, type XapiWatcherOptions, type XapiWatcherPhase } from '../../../../src/xapi/watcher.js';
import { ManualClock, settle } from '../../../helpers/manual-clock.js';
import { ScriptedXapi } from './scripted-xapi.js';

export interface Harness {
  readonly xapi: ScriptedXapi;
  readonly clock: ManualClock;
  readonly watcher: XapiWatcher;
  /** Every phase the watcher went through, in order. */
  readonly phases: XapiWatcherPhase[];
  /** The log lines' messages. */
  readonly logs: { level: number; msg: string; [k: string]: unknown }[];
  /** Settles until the watcher waits on an event.from (throws if it never does). */
  untilPolling(): Promise<void>;
  stop(): Promise<void>;
}

/** A watcher on a scripted XAPI and a manual clock: nothing sleeps, every call is recorded. */
export function harness(options: Partial<XapiWatcherOptions> = {}, xapi = new ScriptedXapi()): Harness {
  const clock = new ManualClock(1_000_000);
  const logs: Harness['logs'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Harness['logs'][number]);
      done();
    },
  });
  const watcher = new XapiWatcher({ caller: xapi, logger: pino({ level: 'debug' }, sink), clock, random: () => 0.5, ...options });
  const phases: XapiWatcherPhase[] = [];
  watcher.on('phase', (p) => phases.push(p));
  return {
    xapi,
    clock,
    watcher,
    phases,
    logs,
    async untilPolling() {
      for (let i = 0; i < 50; i++) {
        await clock.tick();
        if (watcher.phase === 'live' && xapi.poll !== undefined) return;
      }
      throw new Error(`watcher not polling (phase ${watcher.phase})`);
    },
    async stop() {
      const stopped = watcher.stop();
      await settle();
      await stopped;
    },
  };
}

export const vifsOnly = (add: string[], remove: string[] = []) => ({ addVifs: add, removeVifs: remove, addVms: [], removeVms: [] });
