import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as V8 from 'node:v8';
import { describe, expect, it, vi } from 'vitest';
import { REPO_ROOT } from '../../../src/sandbox/host.js';
import { favourMemory, MEMORY_SAVER_FLAG, MEMORY_SAVER_SUPPORTED } from '../../../src/health/heap-mode.js';

describe('favourMemory', () => {
  it('sets the memory-saver flag of V8 once, whatever the number of calls (and never where V8 lacks it)', () => {
    const v8: typeof V8 = process.getBuiltinModule('node:v8');
    // The flag itself is not set in the test process: the spy stands in for V8.
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    try {
      favourMemory();
      favourMemory();
      expect(set.mock.calls).toEqual(MEMORY_SAVER_SUPPORTED ? [[MEMORY_SAVER_FLAG]] : []);
    } finally {
      set.mockRestore();
    }
  });

  it('is used exactly where this node knows the flag (node refuses an unknown one)', () => {
    const r = spawnSync(process.execPath, [MEMORY_SAVER_FLAG, '-e', '0'], { encoding: 'utf8' });
    expect(r.status === 0 && r.stderr === '').toBe(MEMORY_SAVER_SUPPORTED);
    expect(spawnSync(process.execPath, [`${MEMORY_SAVER_FLAG}-typo`, '-e', '0']).status).not.toBe(0);
  });

  it('is known to the node the package ships (scripts/package/node-version: 24)', () => {
    const shipped = Number(readFileSync(join(REPO_ROOT, 'scripts', 'package', 'node-version'), 'utf8').trim().split('.')[0]);
    expect(shipped).toBeGreaterThanOrEqual(24);
    if (Number(process.versions.node.split('.')[0]) === shipped) expect(MEMORY_SAVER_SUPPORTED).toBe(true);
  });
});
