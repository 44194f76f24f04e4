/**
 * `npm run demo` end to end: `node dist/demo/run.js` as a child process (like a user runs it), checked
 * for its exit code, for each step's values in its output, and for cleaning up (or keeping) its temp dir.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/host-env.js';

const DEMO = join(REPO_ROOT, 'dist', 'demo', 'run.js');

function runDemo(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [DEMO, ...args], { timeout: 20_000, env: { ...process.env, NO_COLOR: '' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The output split at the step headings `N) …`; index 0 is the preamble. */
function steps(stdout: string): string[] {
  return stdout.split(/^(?=\d\) )/m);
}

/** The table row of `name` (its first cell, maybe marked `*`). */
const row = (text: string, name: string): string => text.split('\n').find((l) => l.trimStart().split(/\s+/)[0]?.replace(/\*$/, '') === name) ?? '';

describe('npm run demo', () => {
  it('runs every step to convergence, prints what changed, exits 0 and removes its temp dir', async () => {
    const r = await runDemo('--fast', '--no-color');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(15_000);
    // eslint-disable-next-line no-control-regex
    expect(r.stdout).not.toMatch(/\u001b\[/);
    const s = steps(r.stdout);
    expect(s).toHaveLength(8);
    const [intro = '', bridges = '', vifs = '', tap = '', untap = '', override = '', status = '', foreign = ''] = s;

    // 1) bridges: fail modes from the pool and the network, bridge-ids, the Open_vSwitch row's ids.
    expect(row(bridges, 'xenbr0')).toMatch(/xenbr0\*\s+secure\*/);
    expect(row(bridges, 'xenbr1')).toMatch(/standalone\*\s+sdn-bridge-1\*\s+true\*/);
    expect(bridges).toMatch(/XCP-ng\*\s+8\.3\.0-release\/yangtze\/master\/58\*/);
    expect(bridges).toContain('daemon │ updated');

    // 2) four VIF ports, each active with ids.
    const plugged = vifs.split('\n').filter((l) => /^\s+vif\d\.\d\*/.test(l));
    expect(plugged).toHaveLength(4);
    for (const l of plugged) expect(l).toMatch(/active\*/);

    // 3) the tap takes over: active with the vif's ids, the vif inactive.
    const tapRow = row(tap, 'tap1.0');
    expect(tapRow).toMatch(/^\s+tap1\.0\*/);
    const vifRowInTap = row(tap, 'vif1.0');
    expect(tapRow).toMatch(/active\*/);
    const vifIds = /vif1\.0\s+(\S+)\s+(\S+)/.exec(vifRowInTap);
    expect(vifIds).not.toBeNull();
    expect(tapRow).toMatch(new RegExp(`tap1\\.0\\*\\s+${vifIds![1]!}\\*\\s+${vifIds![2]!}\\*`));
    expect(vifRowInTap).toMatch(/inactive\*/);

    // 4) the tap goes: the vif is active again.
    expect(row(untap, 'vif1.0')).toMatch(/\sactive\*/);
    expect(untap).toContain('gone: tap1.0');

    // 5) the XAPI override reaches the database.
    expect(row(override, 'vif1.1')).toContain('sdn-port-42*');

    // 6) ovs-appctl status and /readyz.
    expect(status).toContain('reconcile: converged');
    expect(status).toMatch(/HTTP 200 \{"status":"ok"/);

    // 7) the foreign key survives, the clobbered iface-id is restored.
    expect(row(foreign, 'vif1.0')).toContain('controller-owned=keep-me*');
    expect(row(foreign, 'vif1.0')).toContain(`${vifIds?.[1] ?? '?'} `);
    expect(foreign).toMatch(/daemon exited with exit code 0 after \d+ ms/);

    const logFile = /full logs: (\S+)/.exec(intro)?.[1];
    expect(logFile).toBeDefined();
    expect(existsSync(logFile!)).toBe(false);
  });

  it('keeps its temp dir with the daemon log under --keep', async () => {
    const r = await runDemo('--fast', '--no-color', '--keep');
    expect(r.code).toBe(0);
    const dir = /temp dir kept: (\S+)/.exec(r.stdout)?.[1];
    expect(dir).toBeDefined();
    try {
      expect(readFileSync(join(dir!, 'daemon.log'), 'utf8')).toMatch(/"msg":"updated \d+ rows?"/);
      expect(existsSync(join(dir!, 'ovsdb-server.log'))).toBe(true);
    } finally {
      rmSync(dir!, { recursive: true, force: true });
    }
  });

  it('rejects an unknown option with exit 2', async () => {
    const r = await runDemo('--bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown option --bogus');
  });
});
