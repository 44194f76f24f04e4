/**
 * An idle daemon's health endpoint and metrics wake the process once a second, for the liveness heartbeat
 * (docs/design.md §5, docs/platform.md §7): not for prom-client's event-loop-delay sampler (10 a second)
 * nor for Node's HTTP connection sweep (1 a second). Counted as event-loop iterations of a child process
 * that runs only the health server with its metrics (the built dist/, as the daemon does), so the count
 * does not depend on the machine's speed: a loaded machine can only merge wake-ups, never add them.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/host-env.js';

const run = promisify(execFile);

const SCRIPT = `
import { pathToFileURL } from 'node:url';
const dist = (f) => import(pathToFileURL(process.env.DIST + '/' + f).href);
const { startHealthServer } = await dist('health/server.js');
const { Metrics } = await dist('health/metrics.js');
const { pino } = await import(pathToFileURL(process.env.PINO).href);
const server = await startHealthServer({ host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), metrics: new Metrics({ version: 't' }), checks: {} });
const http = await import('node:http');
await new Promise((resolve) => http.get({ port: server.address.port, host: '127.0.0.1', path: '/metrics', agent: false }, (res) => res.resume().on('end', resolve)));
await new Promise((r) => setTimeout(r, 300));
const loops = () => performance.nodeTiming.uvMetricsInfo.loopCount;
const l0 = loops();
await new Promise((r) => setTimeout(r, Number(process.env.IDLE_MS)));
process.stdout.write(JSON.stringify({ iterations: loops() - l0 }));
await server.close();
`;

describe('an idle health endpoint', () => {
  it('wakes the event loop about once a second', async () => {
    const idleMs = 4500;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', SCRIPT], {
      env: { ...process.env, DIST: join(REPO_ROOT, 'dist'), PINO: join(REPO_ROOT, 'node_modules', 'pino', 'pino.js'), IDLE_MS: String(idleMs) },
      timeout: 30_000,
    });
    const { iterations } = JSON.parse(stdout) as { iterations: number };
    // 4 heartbeats and the wait's own timer; the sweep and the 100 ms sampler would add 4 and 45.
    expect(iterations).toBeGreaterThanOrEqual(1);
    expect(iterations).toBeLessThanOrEqual(Math.ceil(idleMs / 1000) + 2);
  });
});
