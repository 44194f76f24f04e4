import { describe, expect, it } from 'vitest';
import {
  CommandRegistry,
  formatVlogList,
  parseVlogSpec,
  registerVlogCommands,
  terminateBody,
  UnixctlCommandError,
} from '../../../src/control/commands.js';
import { createLogging } from '../../../src/log.js';

const registry = (): CommandRegistry => new CommandRegistry({ programName: 'ovs-xapi-sync', version: '1.0.0' });

describe('CommandRegistry', () => {
  it('answers version and list-commands like OVS', async () => {
    const r = registry();
    r.register('flush-cache', '', 0, 0, () => '');
    r.register('exit', '', 0, 0, () => '');
    r.register('a/b', 'ARG', 1, 1, (args) => args[0]!);
    expect(await r.dispatch('version', [])).toEqual({ ok: true, body: 'ovs-xapi-sync (Open vSwitch compatible) 1.0.0\n' });
    expect((await r.dispatch('list-commands', [])).body).toBe(
      'The available commands are:\n' +
        '  a/b                     ARG\n' +
        '  exit                    \n' +
        '  flush-cache             \n' +
        '  list-commands           \n' +
        '  version                 \n',
    );
  });

  it('validates like lib/unixctl.c process_command', async () => {
    const r = registry();
    r.register('two', '', 1, 2, (args) => args.join('+'));
    expect(await r.dispatch('nope', [])).toEqual({
      ok: false,
      body: '"nope" is not a valid command (use "list-commands" to see a list of valid commands)\n',
    });
    expect(await r.dispatch('two', [])).toEqual({ ok: false, body: '"two" command requires at least 1 arguments\n' });
    expect(await r.dispatch('two', ['a', 'b', 'c'])).toEqual({ ok: false, body: '"two" command takes at most 2 arguments\n' });
    expect(await r.dispatch('two', ['a', 1])).toEqual({ ok: false, body: '"two" command has non-string argument\n' });
    expect(await r.dispatch('two', ['a', 'b'])).toEqual({ ok: true, body: 'a+b\n' });
  });

  it('a throwing or rejecting handler becomes an error reply', async () => {
    const r = registry();
    r.register('sync', '', 0, 0, () => {
      throw new UnixctlCommandError('bad thing');
    });
    r.register('async', '', 0, 0, () => Promise.reject(new Error('session OpaqueRef:abcd failed\n')));
    expect(await r.dispatch('sync', [])).toEqual({ ok: false, body: 'bad thing\n' });
    expect(await r.dispatch('async', [])).toEqual({ ok: false, body: 'session OpaqueRef:[Redacted] failed\n' });
  });

  it('rejects bad registrations', () => {
    expect(() => { registry().register('a b', '', 0, 0, () => ''); }).toThrow();
    expect(() => { registry().register('x', '', 2, 1, () => ''); }).toThrow();
  });

  it('terminateBody appends one newline to non-empty bodies only', () => {
    expect([terminateBody(''), terminateBody('a'), terminateBody('a\n')]).toEqual(['', 'a\n', 'a\n']);
  });
});

describe('vlog', () => {
  const modules = ['main', 'ovsdb', 'xapi'];
  const cases: [string, { module: string | undefined; level: string } | RegExp][] = [
    ['dbg', { module: undefined, level: 'debug' }],
    ['info', { module: undefined, level: 'info' }],
    ['warn', { module: undefined, level: 'warn' }],
    ['ANY:any:dbg', { module: undefined, level: 'debug' }],
    ['ANY:file:emer', { module: undefined, level: 'fatal' }],
    ['console:off', { module: undefined, level: 'silent' }],
    ['xapi:syslog:err', { module: 'xapi', level: 'error' }],
    ['ovsdb', { module: 'ovsdb', level: 'debug' }],
    ['xapi trace', { module: 'xapi', level: 'trace' }],
    ['nosuch:dbg', /no destination, level, or module "nosuch"/],
    ['dbg:info', /cannot specify multiple levels/],
    ['xapi:ovsdb', /cannot specify multiple modules/],
    ['file:console', /cannot specify multiple destinations/],
    ['PATTERN:file:%m', /patterns are not supported/],
  ];
  for (const [spec, want] of cases) {
    it(`parseVlogSpec(${JSON.stringify(spec)})`, () => {
      if (want instanceof RegExp) expect(() => parseVlogSpec(spec, modules)).toThrow(want);
      else expect(parseVlogSpec(spec, modules)).toEqual(want);
    });
  }

  it('formatVlogList uses the OVS table layout', () => {
    expect(formatVlogList([{ name: 'main', level: 'info' }, { name: 'xapi', level: 'debug' }, { name: 'q', level: 'silent' }])).toBe(
      '                 console    syslog    file\n' +
        '                 -------    ------    ------\n' +
        'main              INFO       INFO       INFO\n' +
        'xapi               DBG        DBG        DBG\n' +
        'q                  OFF        OFF        OFF\n',
    );
  });

  it('vlog/set applies all specs or none', async () => {
    const logging = createLogging({ level: 'info', destination: { write: () => undefined } });
    logging.component('xapi');
    const r = registry();
    registerVlogCommands(r, logging);
    expect(await r.dispatch('vlog/set', ['xapi:dbg', 'bogus'])).toEqual({ ok: false, body: 'no destination, level, or module "bogus"\n' });
    expect(logging.level('xapi')).toBe('info');
    expect(await r.dispatch('vlog/set', ['xapi:dbg', 'main:warn'])).toEqual({ ok: true, body: '' });
    expect([logging.level(), logging.level('xapi')]).toEqual(['warn', 'debug']);
    expect((await r.dispatch('vlog/list', [])).body).toContain('xapi               DBG');
    expect(await r.dispatch('vlog/reopen', [])).toEqual({ ok: true, body: '' });
  });
});
