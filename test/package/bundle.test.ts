/**
 * The daemon as it ships and as the tests and the bench run it (`CLI`): the bundle of
 * scripts/package/bundle.mjs (issue 14: one file to read and compile instead of ~140 saves the
 * daemon 50-60 ms of CPU before its first XAPI call). A child node with a module hook lists every file
 * it loads, so a per-module dist/ file or a bundled dependency loaded from node_modules shows up.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, REPO_ROOT } from '../../src/sandbox/host.js';

const dir = mkdtempSync(join(tmpdir(), 'oxs-bundle-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Records each file: URL node loads (ES modules and require() alike) into $OXS_LOADED at exit. */
const HOOK = `
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const loaded = [];
registerHooks({ load(url, context, next) { if (url.startsWith('file:')) loaded.push(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.OXS_LOADED, loaded.join('\\n')));
`;

function filesLoadedBy(args: readonly string[]): { stdout: string; files: string[] } {
  const hook = join(dir, 'hook.mjs');
  const list = join(dir, `loaded-${args.join('_')}`);
  writeFileSync(hook, HOOK);
  const stdout = execFileSync(process.execPath, ['--import', pathToFileURL(hook).href, CLI, ...args], {
    env: { ...process.env, OXS_LOADED: list },
    encoding: 'utf8',
  });
  const root = pathToFileURL(REPO_ROOT).href;
  return { stdout, files: readFileSync(list, 'utf8').split('\n').filter((u) => u.startsWith(root)).map((u) => u.slice(root.length + 1)) };
}

const BIN = 'dist/bin/';
/** Dependencies the bundle holds: none of their files may be loaded from node_modules. */
const BUNDLED = /^node_modules\/(pino|pino-[\w-]+|sonic-boom|thread-stream|@pinojs\/redact|safe-stable-stringify|quick-format-unescaped|on-exit-leak-free|atomic-sleep|jsonrpc-lite|p-retry|is-network-error)\//;

describe('the daemon bundle', () => {
  it('is what CLI runs, and the daemon loads nothing of dist/ outside it nor a dependency it holds', () => {
    expect(dirname(CLI)).toBe(join(REPO_ROOT, 'dist', 'bin'));
    const { stdout, files } = filesLoadedBy(['--version']);
    expect(stdout).toMatch(/^ovs-xapi-sync \(Open vSwitch compatible\) \d+\.\d+\.\d+/);
    // The entry and the daemon's chunk, so the checks below cannot pass on an empty list.
    expect(files).toContain(`${BIN}ovs-xapi-sync.js`);
    expect(files.some((f) => /^dist\/bin\/main-\w+\.js$/.test(f)), files.join(' ')).toBe(true);
    expect(files.filter((f) => f.startsWith('dist/') && !f.startsWith(BIN))).toEqual([]);
    expect(files.filter((f) => BUNDLED.test(f))).toEqual([]);
  });

  it('keeps `logs` apart: its usage comes without loading the daemon chunk', () => {
    const { stdout, files } = filesLoadedBy(['logs', '--help']);
    expect(stdout).toContain('usage: ovs-xapi-sync logs');
    expect(files).toContain(`${BIN}ovs-xapi-sync.js`);
    expect(files.filter((f) => !f.startsWith(BIN))).toEqual([]);
    expect(files.filter((f) => /^dist\/bin\/main-/.test(f))).toEqual([]);
  });
});
