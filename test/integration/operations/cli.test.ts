/**
 * What an operator meets before the daemon runs (issue 6 §5): a password file others can read is
 * refused with exit 2 and one line naming the option; any bad option exits 2; `--help` documents every
 * option; `--version` prints the package version.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optionTable } from '../../../src/config/index.js';
import { REPO_ROOT } from '../../helpers/host-env.js';
import { runCli } from './helpers.js';

describe('operator-facing command line', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oxs-ops-cli-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function passwordFile(mode: number): string {
    const file = join(dir, `pw-${mode.toString(8)}`);
    writeFileSync(file, 'secret\n');
    chmodSync(file, mode);
    return file;
  }

  it.each(['0644', '0640', '0604'])('refuses a password file with mode %s: exit 2, one line naming the option', async (mode) => {
    const file = passwordFile(parseInt(mode, 8));
    const r = await runCli(['unix:/nonexistent/db.sock', '--xapi-password-file', file]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('--xapi-password-file');
    expect(lines[0]).toContain(file);
    expect(lines[0]).toMatch(/chmod 600/);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain('secret');
  });

  it('names the environment variable when the file came from the environment', async () => {
    const file = passwordFile(0o644);
    const r = await runCli([], { OVS_XAPI_SYNC_XAPI_PASSWORD_FILE: file });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([expect.stringContaining('OVS_XAPI_SYNC_XAPI_PASSWORD_FILE')]);
  });

  it.each([
    [['--no-such-option'], {}, '--no-such-option'],
    [['--log-level', 'chatty'], {}, '--log-level'],
    [[], { OVS_XAPI_SYNC_RETRY_MAX_DELAY_MS: '1' }, 'OVS_XAPI_SYNC_RETRY_MAX_DELAY_MS'],
    [['--config', '/nonexistent/config.json'], {}, '--config'],
  ] as const)('exits 2 on a bad option %j %j, naming it', async (args, env, name) => {
    const r = await runCli(args, env);
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
  });

  it('--help exits 0 and lists every option with its environment variable', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const row of optionTable()) {
      expect(r.stdout, row.key).toContain(row.flag ?? row.key);
      if (row.env !== null && row.flag === null) expect(r.stdout, row.key).toContain(row.env);
    }
    for (const extra of ['--config', '--version', '--help', 'SIGHUP', 'SIGUSR2']) expect(r.stdout).toContain(extra);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`ovs-xapi-sync (Open vSwitch compatible) ${pkg.version}`);
    expect((await runCli(['-V'])).stdout).toBe(r.stdout);
  });
});
