import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createFailureSummarizer,
  createLogging,
  journaldPriority,
  prefixJournaldPriority,
  redactRefs,
} from '../../../src/log.js';
import type { LoggingOptions } from '../../../src/log.js';

function capture(options: Omit<LoggingOptions, 'destination'> = {}) {
  const lines: string[] = [];
  const logging = createLogging({ ...options, destination: { write: (s: string) => void lines.push(s) } });
  const parsed = (): Record<string, unknown>[] =>
    lines.map((l) => JSON.parse(l.replace(/^<\d>/, '')) as Record<string, unknown>);
  return { logging, lines, parsed };
}

describe('redaction', () => {
  it('a password or session ref passed in objects at debug level never appears', () => {
    const { logging, lines } = capture({ level: 'debug' });
    const xapi = logging.component('xapi');
    const secret = { password: 'hunter2', xapiPassword: 'pw-2', session: 'OpaqueRef:aaaa-1111', sessionRef: 'OpaqueRef:bbbb-2222' };
    xapi.debug({ ...secret, call: { password: 'pw-3', session: 'OpaqueRef:cccc-3333' }, deep: { login: { password: 'pw-4' } } }, 'login');
    logging.root.debug({ headers: { authorization: 'Basic Zm9vOmJhcg==' } }, 'http');
    xapi.debug(`session.login_with_password -> OpaqueRef:dddd-4444`);
    xapi.debug({ note: 'x' }, 'got %s', 'OpaqueRef:eeee-5555');
    const out = lines.join('');
    expect(lines).toHaveLength(4);
    for (const s of ['hunter2', 'pw-2', 'pw-3', 'pw-4', 'aaaa-1111', 'bbbb-2222', 'cccc-3333', 'dddd-4444', 'eeee-5555', 'Zm9vOmJhcg==']) {
      expect(out).not.toContain(s);
    }
    expect(out).toContain('[Redacted]');
    expect(JSON.parse(lines[0]!)).toMatchObject({ component: 'xapi', password: '[Redacted]', msg: 'login' });
  });

  it('refs in messages can be kept when asked', () => {
    const { logging, lines } = capture({ redactRefsInMessages: false });
    logging.root.info('vm OpaqueRef:1234');
    expect(lines[0]).toContain('OpaqueRef:1234');
  });

  it('redactRefs replaces every OpaqueRef and nothing else', () => {
    expect(redactRefs('a OpaqueRef:12ab-cd and OpaqueRef:NULL.')).toBe('a OpaqueRef:[Redacted] and OpaqueRef:[Redacted].');
    fc.assert(
      fc.property(fc.string(), fc.uuid(), fc.string(), (pre, ref, post) => {
        const out = redactRefs(`${pre} OpaqueRef:${ref} ${post}`);
        expect(out).not.toContain(`OpaqueRef:${ref}`);
        if (!pre.includes('OpaqueRef:') && !post.includes('OpaqueRef:')) {
          expect(out).toBe(`${pre} OpaqueRef:[Redacted] ${post}`);
        }
      }),
    );
  });
});

describe('journald priority prefix', () => {
  it('maps pino levels to syslog priorities', () => {
    expect([10, 20, 30, 40, 50, 60].map(journaldPriority)).toEqual([7, 7, 6, 4, 3, 2]);
    expect(prefixJournaldPriority('{"level":50,"msg":"x"}\n')).toBe('<3>{"level":50,"msg":"x"}\n');
  });

  it('prefixes each line when enabled, not otherwise', () => {
    const on = capture({ level: 'trace', journaldPrefix: true });
    const log = on.logging.component('c');
    log.trace('t');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    log.fatal('f');
    expect(on.lines.map((l) => l.slice(0, 3))).toEqual(['<7>', '<7>', '<6>', '<4>', '<3>', '<2>']);
    expect(on.parsed().map((o) => o.msg)).toEqual(['t', 'd', 'i', 'w', 'e', 'f']);
    const off = capture();
    off.logging.root.error('e');
    expect(off.lines[0]!.startsWith('{')).toBe(true);
  });
});

describe('levels', () => {
  it('cycleLevel: info → debug → trace → info, for every component', () => {
    const { logging } = capture({ level: 'info' });
    logging.component('ovsdb');
    expect([logging.cycleLevel(), logging.cycleLevel(), logging.cycleLevel()]).toEqual(['debug', 'trace', 'info']);
    logging.setLevel('warn');
    expect(logging.cycleLevel()).toBe('debug');
    expect(logging.level('ovsdb')).toBe('debug');
  });

  it('setLevel per component; components() lists main first then sorted names', () => {
    const { logging, lines } = capture({ level: 'info' });
    const x = logging.component('xapi');
    const o = logging.component('ovsdb');
    expect(logging.component('xapi')).toBe(x);
    logging.setLevel('debug', 'xapi');
    x.debug('shown');
    o.debug('hidden');
    expect(lines).toHaveLength(1);
    expect(logging.components()).toEqual([
      { name: 'main', level: 'info' },
      { name: 'ovsdb', level: 'info' },
      { name: 'xapi', level: 'debug' },
    ]);
    expect(() => { logging.setLevel('debug', 'nope'); }).toThrow(/unknown component "nope"/);
    logging.setLevel('error');
    expect(logging.components().every((c) => c.level === 'error')).toBe(true);
    expect(logging.reopen()).toBe('');
  });
});

describe('failure summariser', () => {
  it('logs the first failure, summarises repeats every N or T, logs the recovery', () => {
    const { logging, parsed } = capture({ level: 'info' });
    let now = 1_000_000;
    const s = createFailureSummarizer(logging.component('ovsdb'), { everyN: 3, everyMs: 10_000, now: () => now });
    s.failure('connect', 'cannot connect to ovsdb-server', { remote: 'unix:/x' });
    expect(parsed()).toHaveLength(1);
    expect(parsed()[0]).toMatchObject({ level: 40, failureKey: 'connect', remote: 'unix:/x', msg: 'cannot connect to ovsdb-server' });
    s.failure('connect', 'cannot connect to ovsdb-server');
    s.failure('connect', 'cannot connect to ovsdb-server');
    expect(parsed()).toHaveLength(1); // repeats at debug only
    now += 1000;
    s.failure('connect', 'cannot connect to ovsdb-server');
    expect(parsed()).toHaveLength(2);
    expect(parsed()[1]).toMatchObject({ level: 40, repeats: 3, failures: 4, msg: 'cannot connect to ovsdb-server (repeated 3 more times in 1s)' });
    now += 10_000;
    s.failure('connect', 'cannot connect to ovsdb-server');
    expect(parsed()[2]).toMatchObject({ repeats: 1, failures: 5 });
    expect(s.failures('connect')).toBe(5);
    // An independent key is not summarised with the first.
    s.failure('other', 'other failure');
    expect(parsed()[3]).toMatchObject({ failureKey: 'other', msg: 'other failure' });
    now += 500;
    expect(s.recovered('connect')).toBe(true);
    expect(parsed()[4]).toMatchObject({ level: 30, failureKey: 'connect', failures: 5, failingForMs: 11_500, msg: 'connect recovered after 5 failures' });
    expect(s.recovered('connect')).toBe(false);
    expect(s.failures('connect')).toBe(0);
    s.failure('connect', 'cannot connect again');
    expect(parsed()[5]).toMatchObject({ level: 40, msg: 'cannot connect again' });
  });
});
