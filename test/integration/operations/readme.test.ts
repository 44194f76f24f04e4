/**
 * The operators' section of README.md documents only what exists: every `--flag` and
 * `OVS_XAPI_SYNC_*` variable it names is an option of src/config/, every config key it quotes is a
 * file key, and every signal it describes is one the daemon handles (src/main.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FILE_KEYS, optionTable, RELOADABLE_KEYS } from '../../../src/config/index.js';
import { REPO_ROOT } from '../../helpers/host-env.js';

function operatorsSection(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const m = /<!-- operators:begin -->([\s\S]*)<!-- operators:end -->/.exec(readme);
  if (m?.[1] === undefined) throw new Error('README.md has no operators section');
  return m[1];
}

describe("README's operators section", () => {
  const text = operatorsSection();
  const rows = optionTable();

  it('names only existing command-line flags', () => {
    const known = new Set<string>(['--config', '--help', '--version']);
    for (const r of rows) if (r.flag?.startsWith('--') === true) known.add(r.flag);
    // Flags of the daemon only: skip other tools' options on the same lines (journalctl, curl, ...).
    const daemonLines = text.split('\n').filter((l) => /cli\.js|ovs-xapi-sync --/.test(l) || /^\s+--/.test(l));
    const used = new Set(daemonLines.flatMap((l) => [...l.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0])));
    expect(used.size).toBeGreaterThan(0);
    for (const flag of used) expect(known, flag).toContain(flag);
  });

  it('names only existing environment variables and config keys', () => {
    const envs = new Set(rows.flatMap((r) => (r.env === null ? [] : [r.env])));
    const named = [...text.matchAll(/OVS_XAPI_SYNC_[A-Z_]+/g)].map((m) => m[0]).filter((n) => n !== 'OVS_XAPI_SYNC_');
    expect(named.length).toBeGreaterThan(0);
    for (const name of named) expect(envs, name).toContain(name);
    for (const [, key] of text.matchAll(/"([a-z][A-Za-z]+)": /g)) expect(FILE_KEYS, key).toContain(key);
  });

  it('lists exactly the settings SIGHUP applies', () => {
    const line = text.split('\n').find((l) => l.startsWith('| SIGHUP'));
    expect(line).toBeDefined();
    const listed = new Set([...line!.matchAll(/`([a-z][A-Za-z]+)`/g)].map((m) => m[1]!));
    expect([...listed].sort()).toEqual([...RELOADABLE_KEYS].sort());
  });
});
