import { describe, expect, it } from 'vitest';
import { ShutdownStack } from '../../../src/control/shutdown.js';
import { capturingLogger } from '../../integration/ovsdb/helpers.js';

describe('ShutdownStack', () => {
  it('stops what was started in reverse order, one at a time, and carries on past a failing step', async () => {
    const { logger, lines } = capturingLogger('warn');
    const stack = new ShutdownStack(logger);
    const events: string[] = [];
    stack.push('pidfile', () => {
      events.push('pidfile');
    });
    stack.push('ovsdb', async () => {
      events.push('ovsdb start');
      await new Promise((resolve) => setImmediate(resolve));
      events.push('ovsdb done');
    });
    stack.push('control socket', () => {
      throw new Error('already gone');
    });
    stack.push('engine', () => {
      events.push('engine');
    });
    await stack.stopAll();
    expect(events).toEqual(['engine', 'ovsdb start', 'ovsdb done', 'pidfile']);
    expect(lines.map((l) => l.msg)).toEqual(['error while stopping the control socket']);
    await stack.stopAll();
    expect(events).toHaveLength(4);
  });
});
