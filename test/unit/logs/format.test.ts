import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLine, parseLevel } from '../../../src/logs/format.js';
import { journalctlArgs, parseLogsArgs } from '../../../src/logs/cli.js';

const TIME = Date.UTC(2026, 11, 7, 13, 1, 54, 123);
const previousTz = process.env.TZ;

beforeAll(() => {
  process.env.TZ = 'UTC';
});
afterAll(() => {
  if (previousTz === undefined) delete process.env.TZ;
  else process.env.TZ = previousTz;
});

const pino = (fields: Record<string, unknown>): string => JSON.stringify({ level: 30, time: TIME, pid: 42, hostname: 'dom0', ...fields });

describe('formatLine', () => {
  it.each([
    ['a plain pino line', pino({ msg: 'starting' }), '2026-12-07 13:01:54.123 INFO  starting'],
    ['the component in brackets', pino({ level: 40, component: 'xapi', msg: 'lost' }), '2026-12-07 13:01:54.123 WARN  [xapi] lost'],
    ['extra fields as key=value, quoted when needed', pino({ msg: 'm', n: 3, name: 'vif1.0', text: 'two words', obj: { a: 1 } }), '2026-12-07 13:01:54.123 INFO  m n=3 name=vif1.0 text="two words" obj={"a":1}'],
    ['an unknown level by number', pino({ level: 35, msg: 'm' }), '2026-12-07 13:01:54.123 L35   m'],
    ['a journald priority prefix', `<3>${pino({ level: 50, msg: 'bad' })}`, '2026-12-07 13:01:54.123 ERROR bad'],
    ['a line without msg', pino({ k: 'v' }), '2026-12-07 13:01:54.123 INFO  k=v'],
  ])('formats %s', (_name, line, expected) => {
    expect(formatLine(line)).toBe(expected);
  });

  it('puts an error stack on indented lines under the head', () => {
    const line = pino({ level: 50, msg: 'failed', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (x.js:1:1)' } });
    expect(formatLine(line)).toBe(
      '2026-12-07 13:01:54.123 ERROR failed err={"type":"Error","message":"boom"}\n    Error: boom\n        at f (x.js:1:1)',
    );
  });

  it.each([
    ['plain text', 'node: something went wrong'],
    ['a stack frame', '    at Object.<anonymous> (/opt/ovs-xapi-sync/dist/main.js:1:1)'],
    ['broken JSON', '{"level":30,"msg":'],
    ['JSON without a numeric level', '{"level":"info","msg":"x"}'],
    ['a JSON array', '[1,2]'],
    ['an empty line', ''],
  ])('passes %s through unchanged', (_name, line) => {
    expect(formatLine(line)).toBe(line);
    expect(formatLine(line, 60)).toBe(line);
  });

  it('filters pino lines below the minimum level, and only those', () => {
    expect(formatLine(pino({ level: 20, msg: 'd' }), 30)).toBeUndefined();
    expect(formatLine(pino({ level: 30, msg: 'i' }), 30)).toBeDefined();
    expect(formatLine(pino({ level: 50, msg: 'e' }), 40)).toBeDefined();
  });
});

describe('parseLevel', () => {
  it.each([
    ['warn', 40],
    ['ERROR', 50],
    ['25', 25],
    ['loud', undefined],
    ['', undefined],
  ])('%j → %j', (value, expected) => {
    expect(parseLevel(value)).toBe(expected);
  });
});

describe('logs arguments', () => {
  it('passes -f and --since through to journalctl', () => {
    const parsed = parseLogsArgs(['-f', '--since', '1 hour ago', '--level=warn']);
    expect(parsed).toEqual({ kind: 'run', options: { follow: true, since: '1 hour ago', minLevel: 40 } });
    if (parsed.kind !== 'run') throw new Error('unreachable');
    expect(journalctlArgs(parsed.options)).toEqual(['-u', 'ovs-xapi-sync', '-o', 'cat', '--no-pager', '-f', '--since', '1 hour ago']);
  });

  it('reads the unit alone by default', () => {
    const parsed = parseLogsArgs([]);
    if (parsed.kind !== 'run') throw new Error(`unexpected ${parsed.kind}`);
    expect(journalctlArgs(parsed.options)).toEqual(['-u', 'ovs-xapi-sync', '-o', 'cat', '--no-pager']);
  });

  it.each([[['--level', 'loud']], [['--level']], [['--since']], [['--bogus']], [['-n', '5']]])('rejects %j', (argv) => {
    expect(parseLogsArgs(argv).kind).toBe('error');
  });

  it('answers --help', () => {
    expect(parseLogsArgs(['--help']).kind).toBe('help');
  });
});
