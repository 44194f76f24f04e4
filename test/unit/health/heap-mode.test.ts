import { spawnSync } from 'node:child_process';
import type * as V8 from 'node:v8';
import { describe, expect, it, vi } from 'vitest';
import { favourMemory, MEMORY_SAVER_FLAG } from '../../../src/health/heap-mode.js';

describe('favourMemory', () => {
  it('sets the memory-saver flag of V8 once, whatever the number of calls', () => {
    const v8: typeof V8 = process.getBuiltinModule('node:v8');
    // The flag itself is not set in the test process: the spy stands in for V8.
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    try {
      favourMemory();
      favourMemory();
      expect(set.mock.calls).toEqual([[MEMORY_SAVER_FLAG]]);
    } finally {
      set.mockRestore();
    }
  });

  it('names a flag the shipped node knows (node refuses an unknown one)', () => {
    const r = spawnSync(process.execPath, [MEMORY_SAVER_FLAG, '-e', '0'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(spawnSync(process.execPath, [`${MEMORY_SAVER_FLAG}-typo`, '-e', '0']).status).not.toBe(0);
  });
});
