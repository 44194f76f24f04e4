/**
 * `ovs-xapi-sync logs` end to end: the built CLI runs a stub `journalctl` found first on PATH, which
 * records its arguments and prints a scripted journal.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../../helpers/host-env.js';

const TIME = Date.UTC(2026, 11, 7, 13, 1, 54, 123);
const JOURNAL = [
  JSON.stringify({ level: 30, time: TIME, pid: 7, hostname: 'dom0', component: 'sync', msg: 'pass done', changes: 2 }),
  'node:internal/process: a line that is not JSON',
  JSON.stringify({ level: 20, time: TIME, pid: 7, hostname: 'dom0', msg: 'noise' }),
  JSON.stringify({ level: 50, time: TIME, pid: 7, hostname: 'dom0', component: 'xapi', msg: 'login failed' }),
];

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oxs-logs-'));
  writeFileSync(join(dir, 'journal.txt'), `${JOURNAL.join('\n')}\n`);
  const stub = join(dir, 'journalctl');
  writeFileSync(stub, `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args.txt"\ncat "${dir}/journal.txt"\nexit \${STUB_EXIT:-0}\n`);
  chmodSync(stub, 0o755);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function runLogs(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'logs', ...args],
      { env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}`, TZ: 'UTC', ...env }, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const recordedArgs = (): string[] => readFileSync(join(dir, 'args.txt'), 'utf8').trimEnd().split('\n');

describe('ovs-xapi-sync logs', () => {
  it('reads the unit with -o cat and prints it readable, other lines unchanged', async () => {
    const r = await runLogs([]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(recordedArgs()).toEqual(['-u', 'ovs-xapi-sync', '-o', 'cat', '--no-pager']);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      '2026-12-07 13:01:54.123 INFO  [sync] pass done changes=2',
      'node:internal/process: a line that is not JSON',
      '2026-12-07 13:01:54.123 DEBUG noise',
      '2026-12-07 13:01:54.123 ERROR [xapi] login failed',
    ]);
  });

  it('passes -f and --since through and filters by --level', async () => {
    const r = await runLogs(['-f', '--since', '1 hour ago', '--level', 'warn']);
    expect(r.code).toBe(0);
    expect(recordedArgs()).toEqual(['-u', 'ovs-xapi-sync', '-o', 'cat', '--no-pager', '-f', '--since', '1 hour ago']);
    expect(r.stdout.trimEnd().split('\n')).toEqual(['node:internal/process: a line that is not JSON', '2026-12-07 13:01:54.123 ERROR [xapi] login failed']);
  });

  it("exits with journalctl's status", async () => {
    const r = await runLogs([], { STUB_EXIT: '3' });
    expect(r.code).toBe(3);
  });

  it('exits 2 on a bad option without running journalctl', async () => {
    rmSync(join(dir, 'args.txt'), { force: true });
    const r = await runLogs(['--level', 'loud']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--level/);
    expect(() => readFileSync(join(dir, 'args.txt'))).toThrow();
  });

  it('says so when journalctl is missing', async () => {
    const r = await runLogs([], { PATH: '/nonexistent' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot run journalctl/);
  });
});
