import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CommandRegistry, registerVlogCommands } from '../../../src/control/commands.js';
import { createPidfile } from '../../../src/control/pidfile.js';
import type { Pidfile } from '../../../src/control/pidfile.js';
import { UnixctlServer } from '../../../src/control/unixctl-server.js';
import { createLogging } from '../../../src/log.js';
import type { Logging } from '../../../src/log.js';

/** The unmodified ovs-appctl 3.1.0 drives our control socket (docs/ovsdb.md §6). */

const APPCTL = '/usr/bin/ovs-appctl';
const REPO = fileURLToPath(new URL('../../..', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function appctl(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(APPCTL, ['--timeout=10', ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Sends raw bytes and collects the reply until the server closes or `until` matches. */
function raw(path: string, data: string, until?: (s: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(buf);
    }, 5000);
    s.on('data', (d) => {
      buf += d.toString();
      if (until?.(buf) === true) {
        clearTimeout(timer);
        s.destroy();
        resolve(buf);
      }
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(buf);
    });
    s.on('error', reject);
    s.write(data);
  });
}

function catFile(path: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('cat', [path], (_e, stdout) => {
      resolve(stdout);
    });
  });
}

let dir: string;
let logging: Logging;
let server: UnixctlServer;
let pidfile: Pidfile | undefined;
const socketPath = (): string => join(dir, `ovs-xapi-sync.${process.pid}.ctl`);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ovsxs-ctl-'));
  logging = createLogging({ level: 'info', destination: { write: () => undefined } });
  logging.component('ovsdb');
  logging.component('xapi');
  const registry = new CommandRegistry({ programName: 'ovs-xapi-sync', version: '9.9.9' });
  registerVlogCommands(registry, logging);
  registry.register('exit', '', 0, 0, () => '');
  registry.register('fail', '', 0, 0, () => {
    throw new Error('it failed for OpaqueRef:1234-abcd');
  });
  registry.register('echo', 'ARG...', 1, 3, (args) => args.join(' '));
  server = new UnixctlServer({ path: socketPath(), registry, logger: pino({ level: 'silent' }) });
  await server.start();
});

afterAll(async () => {
  pidfile?.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ovs-appctl -t /path/to/socket', () => {
  it('version', async () => {
    const r = await appctl(['-t', socketPath(), 'version']);
    expect(r).toEqual({ code: 0, stdout: 'ovs-xapi-sync (Open vSwitch compatible) 9.9.9\n', stderr: '' });
  });

  it('list-commands: OVS layout, sorted', async () => {
    const r = await appctl(['-t', socketPath(), 'list-commands']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('The available commands are:');
    const names = lines.slice(1, -1).map((l) => l.trim().split(/\s+/)[0]);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['echo', 'exit', 'list-commands', 'version', 'vlog/list', 'vlog/reopen', 'vlog/set']));
    expect(lines).toContain(`  ${'echo'.padEnd(23)} ARG...`);
  });

  it('vlog/set dbg then vlog/list shows DBG everywhere', async () => {
    const set = await appctl(['-t', socketPath(), 'vlog/set', 'dbg']);
    expect(set).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(logging.level('xapi')).toBe('debug');
    const list = await appctl(['-t', socketPath(), 'vlog/list']);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toBe('                 console    syslog    file');
    expect(list.stdout).toContain(`${'xapi'.padEnd(16)}   DBG        DBG        DBG\n`);
    const one = await appctl(['-t', socketPath(), 'vlog/set', 'ovsdb:file:warn']);
    expect(one.code).toBe(0);
    expect(logging.level('ovsdb')).toBe('warn');
    expect(logging.level('xapi')).toBe('debug');
    const any = await appctl(['-t', socketPath(), 'vlog/set', 'ANY:any:info']);
    expect(any.code).toBe(0);
    expect(logging.level('ovsdb')).toBe('info');
  });

  it('vlog/set with an unknown word is an error (exit 2)', async () => {
    const r = await appctl(['-t', socketPath(), 'vlog/set', 'nosuchmodule:dbg']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no destination, level, or module "nosuchmodule"');
  });

  it('vlog/reopen answers ""', async () => {
    expect(await appctl(['-t', socketPath(), 'vlog/reopen'])).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('an unknown command exits 2 with the OVS message', async () => {
    const r = await appctl(['-t', socketPath(), 'no-such-command']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      '"no-such-command" is not a valid command (use "list-commands" to see a list of valid commands)\n',
    );
    expect(r.stderr).toContain('server returned an error');
  });

  it('argument counts are checked', async () => {
    const extra = await appctl(['-t', socketPath(), 'version', 'extra-arg']);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('"version" command takes at most 0 arguments\n');
    const few = await appctl(['-t', socketPath(), 'echo']);
    expect(few.code).toBe(2);
    expect(few.stderr).toContain('"echo" command requires at least 1 arguments\n');
    const ok = await appctl(['-t', socketPath(), 'echo', 'a', 'b']);
    expect(ok).toEqual({ code: 0, stdout: 'a b\n', stderr: '' });
  });

  it('a failing handler is an error reply with refs redacted', async () => {
    const r = await appctl(['-t', socketPath(), 'fail']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('it failed for OpaqueRef:[Redacted]');
    expect(r.stderr).not.toContain('1234-abcd');
  });

  it('the socket file has mode 0600', () => {
    const st = statSync(socketPath());
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });
});

describe('wire format', () => {
  it('replies exactly as ovsdb-server does, in order, several requests on one connection', async () => {
    const out = await raw(
      socketPath(),
      '{"id":0,"method":"version","params":[]}{"id":1,"method":"nope","params":[]}{"id":2,"method":"echo","params":[7]}',
      (s) => s.includes('"id":2'),
    );
    expect(out).toBe(
      '{"id":0,"result":"ovs-xapi-sync (Open vSwitch compatible) 9.9.9\\n","error":null}' +
        '{"id":1,"error":"\\"nope\\" is not a valid command (use \\"list-commands\\" to see a list of valid commands)\\n"}' +
        '{"id":2,"error":"\\"echo\\" command has non-string argument\\n"}',
    );
  });

  it('a message that is not a request closes the connection; garbage too', async () => {
    expect(await raw(socketPath(), '{"id":null,"method":"version","params":[]}')).toBe('');
    expect(await raw(socketPath(), '[1,2,3]')).toBe('');
    // The server is still fine afterwards.
    expect((await appctl(['-t', socketPath(), 'version'])).code).toBe(0);
  });
});

describe('name form: ovs-appctl -t ovs-xapi-sync (fcntl-locked pidfile)', () => {
  let holder: ChildProcess | undefined;
  afterEach(() => {
    holder?.kill('SIGKILL');
    holder = undefined;
  });

  it('fails without a pidfile, works with our locked one', async () => {
    const env = { OVS_RUNDIR: dir };
    const before = await appctl(['-t', 'ovs-xapi-sync', 'version'], env);
    expect(before.code).not.toBe(0);
    pidfile = await createPidfile({ path: join(dir, 'ovs-xapi-sync.pid'), pid: process.pid });
    // Read it from another process: opening and closing the file here would drop our POSIX lock.
    expect(await catFile(join(dir, 'ovs-xapi-sync.pid'))).toBe(`${process.pid}\n`);
    const r = await appctl(['-t', 'ovs-xapi-sync', 'version'], env);
    expect(r).toEqual({ code: 0, stdout: 'ovs-xapi-sync (Open vSwitch compatible) 9.9.9\n', stderr: '' });
    expect(existsSync(join(dir, `ovs-xapi-sync.pid.tmp${process.pid}`))).toBe(false);
  });

  it('a second instance (another process) is refused while we hold it', async () => {
    const path = join(dir, 'ovs-xapi-sync.pid');
    expect(pidfile).toBeDefined();
    const script = `
      const fs = require('fs'); const ext = require('fs-ext');
      const fd = fs.openSync(${JSON.stringify(path)}, 'r+');
      ext.fcntl(fd, 'setlk', ext.constants.F_WRLCK, (e) => console.log(e ? 'REFUSED ' + e.code : 'LOCKED-BY-ME'));`;
    const out = await new Promise<string>((resolve) => {
      execFile(process.execPath, ['-e', script], { cwd: REPO }, (_e, stdout) => {
        resolve(stdout.trim());
      });
    });
    expect(out).toMatch(/^REFUSED (EAGAIN|EACCES)$/);
  });

  it('removes the pidfile on close; a stale (unlocked) pidfile is replaced', async () => {
    const path = join(dir, 'ovs-xapi-sync.pid');
    pidfile?.close();
    pidfile = undefined;
    expect(existsSync(path)).toBe(false);
    writeFileSync(path, '999999\n');
    pidfile = await createPidfile({ path, pid: process.pid });
    expect(await catFile(path)).toBe(`${process.pid}\n`);
    pidfile.close();
    pidfile = undefined;
    expect(existsSync(path)).toBe(false);
  });

  it('refuses to start when another live process holds the lock', async () => {
    const path = join(dir, 'other.pid');
    const script = `
      const fs = require('fs'); const ext = require('fs-ext');
      const fd = fs.openSync(${JSON.stringify(path)}, 'w');
      ext.fcntl(fd, 'setlk', ext.constants.F_WRLCK, (e) => {
        if (e) { console.log('error ' + e.code); return; }
        fs.writeSync(fd, process.pid + '\\n');
        console.log('ready'); setInterval(() => {}, 1000);
      });`;
    const child = spawn(process.execPath, ['-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    holder = child;
    const first = await new Promise<string>((resolve) => {
      child.stdout.once('data', (d: Buffer) => {
        resolve(d.toString().trim());
      });
    });
    expect(first).toBe('ready');
    await expect(createPidfile({ path, pid: process.pid })).rejects.toThrow(
      expect.objectContaining({ code: 'PIDFILE_LOCKED', message: expect.stringContaining(`locked by pid ${child.pid}`) }),
    );
    // The holder's file is untouched and our temp file is gone.
    expect(readFileSync(path, 'utf8')).toBe(`${child.pid}\n`);
    expect(existsSync(`${path}.tmp${process.pid}`)).toBe(false);
  });
});

describe('socket lifecycle', () => {
  it('an exit command that closes the server still delivers its reply; the socket is removed', async () => {
    const path = join(dir, 'exit.ctl');
    const registry = new CommandRegistry({ programName: 'x', version: '1' });
    const srv = new UnixctlServer({ path, registry, logger: pino({ level: 'silent' }) });
    let closed: Promise<void> | undefined;
    registry.register('exit', '', 0, 0, () => {
      setImmediate(() => {
        closed = srv.close();
      });
      return 'bye';
    });
    await srv.start();
    expect(await appctl(['-t', path, 'exit'])).toEqual({ code: 0, stdout: 'bye\n', stderr: '' });
    await closed;
    expect(existsSync(path)).toBe(false);
  });

  it('replaces a stale socket, refuses a live one, removes its socket on close', async () => {
    const path = join(dir, 'second.ctl');
    const registry = new CommandRegistry({ programName: 'x', version: '1' });
    const a = new UnixctlServer({ path, registry, logger: pino({ level: 'silent' }) });
    await a.start();
    const b = new UnixctlServer({ path, registry, logger: pino({ level: 'silent' }) });
    await expect(b.start()).rejects.toMatchObject({ code: 'CONTROL_SOCKET' });
    await a.close();
    expect(existsSync(path)).toBe(false);

    // A stale socket: bound by a process that died without removing it.
    const script = `const s=require('net').createServer(); s.listen(${JSON.stringify(path)}, () => { console.log('up'); process.kill(process.pid, 'SIGKILL'); });`;
    await new Promise<void>((resolve) => {
      execFile(process.execPath, ['-e', script], () => {
        resolve();
      });
    });
    expect(statSync(path).isSocket()).toBe(true);
    await b.start();
    expect((await appctl(['-t', path, 'version'])).stdout).toBe('x (Open vSwitch compatible) 1\n');
    await b.close();

    writeFileSync(path, 'not a socket');
    await expect(new UnixctlServer({ path, registry, logger: pino({ level: 'silent' }) }).start()).rejects.toThrow(/not a socket/);
  });
});
