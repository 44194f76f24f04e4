/**
 * Log levels at runtime and journald priorities (issue 6 §3) with the real daemon: SIGUSR2 cycles
 * info → debug → trace → info, `ovs-appctl vlog/set` changes the level (both `-t` forms), and with
 * OVS_XAPI_SYNC_LOG_JOURNALD_PREFIX=true every stdout line starts with the `<N>` syslog priority of its
 * level, which is what `journalctl -p` filters on.
 *
 * Probe: every `ovs-appctl` command makes the control component log one debug line ("control
 * command"), so the presence or absence of that line tells whether debug is on. An absence is judged
 * only after a later line (written in order on the same stream) has arrived.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { journaldPriority } from '../../../src/log.js';
import { REPO_ROOT, startHostEnv, type Daemon, type HostEnv, type LogLine } from '../../helpers/host-env.js';
import { FAST_ENV } from './helpers.js';

const DEBUG = 20;

describe('runtime log levels and journald priorities', () => {
  let env: HostEnv;
  let daemon: Daemon;

  const isControlDebug = (l: LogLine): boolean => l.component === 'control' && l.level === DEBUG && l.msg === 'control command';

  /** Runs one control command and tells whether it produced a debug line, judged after a marker line. */
  async function commandLogsDebug(target: string): Promise<boolean> {
    const from = daemon.logs.length;
    const r = await env.appctl(target, 'version');
    expect(r.code).toBe(0);
    // Marker: a SIGHUP reload changes nothing here and logs one info line that closes the window.
    daemon.child.kill('SIGHUP');
    const marker = await daemon.waitForLog((l) => daemon.logs.indexOf(l) >= from && /configuration reload/.test(l.msg ?? ''));
    const end = daemon.logs.indexOf(marker);
    return daemon.logs.slice(from, end).some(isControlDebug);
  }

  beforeAll(async () => {
    env = await startHostEnv({ vms: 1, vifsPerVm: 1 });
    daemon = env.startDaemon({ logLevel: 'info', env: { ...FAST_ENV, OVS_XAPI_SYNC_LOG_JOURNALD_PREFIX: 'true' } });
    await daemon.healthUrl();
  });

  afterAll(async () => {
    await env.close();
  });

  it('starts at info: a control command logs no debug line', async () => {
    expect(await commandLogsDebug(daemon.controlPath)).toBe(false);
  });

  it('SIGUSR2 raises info to debug, then trace, then back to info', async () => {
    const levels: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const from = daemon.logs.length;
      daemon.child.kill('SIGUSR2');
      const line = await daemon.waitForLog((l) => daemon.logs.indexOf(l) >= from && l.msg === 'log level changed (SIGUSR2)');
      expect(line.level).toBe(30);
      levels.push(line.logLevel);
      if (i === 0) expect(await commandLogsDebug(daemon.controlPath)).toBe(true);
    }
    expect(levels).toEqual(['debug', 'trace', 'info']);
    expect(await commandLogsDebug(daemon.controlPath)).toBe(false);
  });

  it('ovs-appctl vlog/set changes the level, by name (-t ovs-xapi-sync) and by socket path', async () => {
    const set = await env.appctl('ovs-xapi-sync', 'vlog/set', 'dbg');
    expect(set.code).toBe(0);
    const list = await env.appctl(daemon.controlPath, 'vlog/list');
    expect(list.stdout).toMatch(/^control\s+DBG/m);
    expect(await commandLogsDebug('ovs-xapi-sync')).toBe(true);
    expect((await env.appctl(daemon.controlPath, 'vlog/set', 'info')).code).toBe(0);
    expect(await commandLogsDebug(daemon.controlPath)).toBe(false);
    // One component only.
    expect((await env.appctl(daemon.controlPath, 'vlog/set', 'control:dbg')).code).toBe(0);
    expect(await commandLogsDebug(daemon.controlPath)).toBe(true);
    const bad = await env.appctl(daemon.controlPath, 'vlog/set', 'loud');
    expect(bad.code).not.toBe(0);
  });

  it("knows every ovs-appctl command the README's operators section documents", async () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = /<!-- operators:begin -->([\s\S]*)<!-- operators:end -->/.exec(readme)?.[1] ?? '';
    const documented = new Set<string>();
    for (const m of section.matchAll(/ovs-appctl -t \S+ ([a-z][a-z/-]*)/g)) documented.add(m[1]!);
    for (const row of section.split('\n').filter((l) => l.startsWith('| `'))) {
      const first = row.split('|')[1] ?? '';
      for (const m of first.matchAll(/`([a-z][a-z/-]*)/g)) documented.add(m[1]!);
    }
    expect([...documented]).toEqual(expect.arrayContaining(['status', 'flush-cache', 'vlog/set', 'exit']));
    const list = await env.appctl(daemon.controlPath, 'list-commands');
    expect(list.code).toBe(0);
    const known = new Set(list.stdout.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[0]).filter((c): c is string => c !== undefined && c !== ''));
    for (const command of documented) expect(known, command).toContain(command);
  });

  it('prefixes every stdout line with the syslog priority of its level', () => {
    const lines = daemon.stdout().split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(5);
    const seen = new Set<number>();
    for (const text of lines) {
      const m = /^<([0-7])>(\{.*\})$/.exec(text);
      expect(m, text).not.toBeNull();
      const level = (JSON.parse(m![2]!) as { level: number }).level;
      expect(Number(m![1]), text).toBe(journaldPriority(level));
      seen.add(Number(m![1]));
    }
    // Both info (6) and debug (7) lines were written during this test.
    expect([...seen]).toEqual(expect.arrayContaining([6, 7]));
  });
});
