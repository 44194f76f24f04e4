import { describe, expect, it } from 'vitest';
import { ProgressTracker } from '../../../src/health/liveness.js';
import { Metrics } from '../../../src/health/metrics.js';
import { observePasses } from '../../../src/health/observe.js';
import type { PassReport } from '../../../src/sync/pass-report.js';

function report(result: PassReport['result'], pending = 0): PassReport {
  return { result, seconds: 0.01, rows: result === 'changed' ? 5 : 0, changesByKey: new Map(), pending, unknown: 0 };
}

describe('observePasses', () => {
  it('runs `settled` once, at the first pass that finds the database converged with no answer awaited', () => {
    let settled = 0;
    let after = 0;
    const observer = observePasses(new Metrics({ version: 't', defaultMetrics: false }), new ProgressTracker({ expectedIntervalMs: 1000 }), () => (after += 1), () => (settled += 1));
    observer.passFinished?.(report('not_ready'));
    observer.passFinished?.(report('changed'));
    observer.passFinished?.(report('converged', 3));
    expect(settled).toBe(0);
    observer.passFinished?.(report('converged'));
    expect(settled).toBe(1);
    observer.passFinished?.(report('changed'));
    observer.passFinished?.(report('converged'));
    expect(settled).toBe(1);
    expect(after).toBe(6);
  });
});
