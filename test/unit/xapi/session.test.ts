import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { XapiValue } from '../../../src/xapi/codec/types.js';
import { XapiError, XapiTransportError } from '../../../src/xapi/errors.js';
import { MIN_LOGIN_TIMEOUT_MS, PROBE_LOGIN_TIMEOUT_MS, XapiSession, type XapiCallEvent } from '../../../src/xapi/session.js';
import type { XapiEndpoint, XapiTransport } from '../../../src/xapi/transport.js';
import { ManualClock } from '../../helpers/manual-clock.js';

const logger = pino({ level: 'silent' });
const FAST = { initialMs: 1, maxMs: 2, factor: 2, jitter: 0 };

interface Call {
  readonly method: string;
  readonly params: readonly XapiValue[];
  readonly host: string;
  readonly timeoutMs?: number | undefined;
}
type Script = (method: string, params: readonly XapiValue[], host: string) => XapiValue | Promise<XapiValue>;

class ScriptedTransport implements XapiTransport {
  readonly protocol = 'xmlrpc' as const;
  readonly log: Call[];
  constructor(
    readonly endpoint: XapiEndpoint,
    private readonly script: Script,
    log?: Call[],
    private readonly loneHost = false,
  ) {
    this.log = log ?? [];
  }
  async call(method: string, params: readonly XapiValue[], options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<XapiValue> {
    const host = this.endpoint.kind === 'unix' ? 'unix' : this.endpoint.host;
    if (this.loneHost && MEMBER_LOOKUP.has(method)) return [];
    this.log.push({ method, params, host, timeoutMs: options?.timeoutMs });
    if (options?.signal?.aborted === true) throw new Error('aborted');
    return this.script(method, params, host);
  }
  withHost(host: string): XapiTransport | undefined {
    if (this.endpoint.kind === 'unix') return undefined;
    return new ScriptedTransport({ ...this.endpoint, host }, this.script, this.log, this.loneHost);
  }
  close(): void {}
}

const tcp: XapiEndpoint = { kind: 'http', host: 'member', port: 80 };

/** The pool-member lookup after each TCP login (failover candidates); a lone host here, unlogged. */
const MEMBER_LOOKUP = new Set(['host.get_all', 'host.get_address']);

function session(script: Script, extra: Partial<ConstructorParameters<typeof XapiSession>[0]> = {}, endpoint = tcp) {
  const transport = new ScriptedTransport(endpoint, script, undefined, true);
  const s = new XapiSession({ transport, user: 'root', password: 's3cret', logger, backoff: FAST, ...extra });
  return { s, log: transport.log };
}

describe('XapiSession', () => {
  it('logs in with version and originator, prepends the session ref, reports calls', async () => {
    const { s, log } = session((method) => (method === 'session.login_with_password' ? 'OpaqueRef:s1' : 'pong'));
    const events: XapiCallEvent[] = [];
    const states: boolean[] = [];
    s.on('call', (e) => events.push(e));
    s.on('state', (e) => states.push(e.valid));
    expect(await s.call('pool.get_all', [])).toBe('pong');
    expect(log[0]?.params).toEqual(['root', 's3cret', '1.0', 'ovs-xapi-sync']);
    expect(log[1]?.params).toEqual(['OpaqueRef:s1']);
    expect(events.filter((e) => !MEMBER_LOOKUP.has(e.method)).map((e) => [e.method, e.outcome])).toEqual([
      ['session.login_with_password', 'ok'],
      ['pool.get_all', 'ok'],
    ]);
    expect(states).toEqual([true]);
    expect(s.valid).toBe(true);
    expect(s.generation).toBe(1);
  });

  it('SESSION_INVALID → one re-login, then the call succeeds with the new ref', async () => {
    let logins = 0;
    const { s, log } = session((method, params) => {
      if (method === 'session.login_with_password') return `OpaqueRef:s${++logins}`;
      if (params[0] === 'OpaqueRef:s1') throw new XapiError('SESSION_INVALID', ['OpaqueRef:s1'], method);
      return 'ok';
    });
    let relogins = 0;
    s.on('relogin', () => relogins++);
    await s.login();
    expect(await s.call('VM.get_all', [])).toBe('ok');
    expect(log.map((l) => l.method)).toEqual(['session.login_with_password', 'VM.get_all', 'session.login_with_password', 'VM.get_all']);
    expect(relogins).toBe(1);
    expect(s.generation).toBe(2);
  });

  it('SESSION_INVALID twice in a row is reported, with the session ref redacted', async () => {
    let logins = 0;
    const { s } = session((method, params) => {
      if (method === 'session.login_with_password') return `OpaqueRef:s${++logins}`;
      throw new XapiError('SESSION_INVALID', [params[0] as string], method);
    });
    const err = await s.call('VM.get_all', []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XapiError);
    expect((err as XapiError).code).toBe('SESSION_INVALID');
    expect((err as Error).message).not.toContain('OpaqueRef:s2');
    expect(logins).toBe(2);
  });

  it('follows HOST_IS_SLAVE to the master on login', async () => {
    const { s, log } = session((method, _params, host) => {
      if (method === 'session.login_with_password') {
        if (host === 'member') throw new XapiError('HOST_IS_SLAVE', ['10.0.0.1'], method);
        return 'OpaqueRef:m';
      }
      return host;
    });
    expect(await s.call('pool.get_all', [])).toBe('10.0.0.1');
    expect(log.map((l) => l.host)).toEqual(['member', '10.0.0.1', '10.0.0.1']);
    expect(s.target).toBe('http://10.0.0.1:80');
  });

  it('does not redirect a unix-socket session', async () => {
    const { s } = session(
      (method) => {
        throw new XapiError('HOST_IS_SLAVE', ['10.0.0.1'], method);
      },
      {},
      { kind: 'unix', socketPath: '/x' },
    );
    await expect(s.call('pool.get_all', [])).rejects.toMatchObject({ code: 'HOST_IS_SLAVE' });
  });

  it('retries transient failures with backoff, then succeeds', async () => {
    let failures = 2;
    const { s, log } = session((method) => {
      if (method !== 'session.login_with_password' && failures-- > 0) throw new XapiTransportError('XAPI_TRANSPORT', 'connect ECONNREFUSED');
      return method === 'session.login_with_password' ? 'OpaqueRef:s' : 'ok';
    });
    expect(await s.call('pool.get_all', [])).toBe('ok');
    expect(log.filter((l) => l.method === 'pool.get_all')).toHaveLength(3);
    const booting = session((method) => {
      throw new XapiError('HOST_STILL_BOOTING', [], method);
    });
    await expect(booting.s.call('pool.get_all', [], { retries: 2 })).rejects.toMatchObject({ code: 'HOST_STILL_BOOTING' });
    expect(booting.log).toHaveLength(3);
  });

  it('does not retry permanent errors', async () => {
    const { s, log } = session((method) => {
      if (method === 'session.login_with_password') return 'OpaqueRef:s';
      throw new XapiError('UUID_INVALID', ['VIF', 'x'], method);
    });
    await expect(s.call('VIF.get_by_uuid', ['x'])).rejects.toMatchObject({ code: 'UUID_INVALID' });
    expect(log).toHaveLength(2);
  });

  it('reports SESSION_AUTHENTICATION_FAILED and retries it only slowly; the password never leaks', async () => {
    const clock = new ManualClock();
    const lines: string[] = [];
    const capture = pino({ level: 'trace' }, { write: (l: string) => lines.push(l) });
    const { s, log } = session(
      (method) => {
        throw new XapiError('SESSION_AUTHENTICATION_FAILED', ['root', 'Authentication failure'], method);
      },
      { clock, authRetryDelayMs: 30_000, logger: capture },
    );
    const reported: XapiError[] = [];
    s.on('authFailed', (e) => reported.push(e));
    await expect(s.call('pool.get_all', [])).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
    await expect(s.call('pool.get_all', [])).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
    await clock.advance(29_999);
    await expect(s.login()).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
    expect(log).toHaveLength(1);
    await clock.advance(1);
    await expect(s.login()).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
    expect(log).toHaveLength(2);
    expect(reported).toHaveLength(2);
    expect(lines.some((l) => l.includes('SESSION_AUTHENTICATION_FAILED'))).toBe(true);
    expect(lines.join('\n')).not.toContain('s3cret');
  });

  it('abandons a call and its retries when the signal aborts', async () => {
    const controller = new AbortController();
    const { s } = session((method) => {
      if (method === 'session.login_with_password') return 'OpaqueRef:s';
      controller.abort();
      throw new XapiTransportError('XAPI_TRANSPORT', 'connect ECONNREFUSED');
    }, { backoff: { initialMs: 10_000, maxMs: 10_000, factor: 1, jitter: 0 } });
    const started = Date.now();
    const err = await s.call('pool.get_all', [], { signal: controller.signal, retries: 5 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toBeInstanceOf(Error);
    expect(['ABORTED', 'XAPI_TRANSPORT']).toContain((err as { code?: string }).code);
  });

  it('marks the session not valid while XAPI is unreachable', async () => {
    let down = false;
    const { s } = session((method) => {
      if (down) throw new XapiTransportError('XAPI_TRANSPORT', 'connect ECONNREFUSED');
      return method === 'session.login_with_password' ? 'OpaqueRef:s' : 'ok';
    });
    const states: boolean[] = [];
    s.on('state', (e) => states.push(e.valid));
    await s.call('a.b', []);
    down = true;
    await expect(s.call('a.b', [], { retries: 0 })).rejects.toMatchObject({ code: 'XAPI_TRANSPORT' });
    expect(s.valid).toBe(false);
    down = false;
    await s.call('a.b', []);
    expect(states).toEqual([true, false, true]);
  });
});

describe('XapiSession on scripted time (one Backoff, one Clock)', () => {
  it('waits the backoff on its clock between transient failures', async () => {
    const clock = new ManualClock();
    let failures = 2;
    const { s, log } = session(
      (method) => {
        if (method !== 'session.login_with_password' && failures-- > 0) throw new XapiTransportError('XAPI_TRANSPORT', 'connect ECONNREFUSED');
        return method === 'session.login_with_password' ? 'OpaqueRef:s' : 'ok';
      },
      { clock, backoff: { initialMs: 1000, maxMs: 8000, factor: 2, jitter: 0 } },
    );
    const attempts = (): number => log.filter((l) => l.method === 'pool.get_all').length;
    let result: XapiValue | undefined;
    void s.call('pool.get_all', []).then((v) => (result = v));
    await clock.tick();
    expect(attempts()).toBe(1);
    await clock.advance(999);
    expect(attempts()).toBe(1);
    await clock.advance(1);
    expect(attempts()).toBe(2);
    await clock.advance(1999);
    expect(attempts()).toBe(2);
    await clock.advance(1);
    expect(attempts()).toBe(3);
    expect(result).toBe('ok');
  });

  it('gives the login time for xapi\'s 5 s delay before a refusal (xapi_session.ml:1025-1028), and does not retry a refusal', async () => {
    const clock = new ManualClock();
    const { s, log } = session(
      (method) => {
        throw new XapiError('SESSION_AUTHORIZATION_FAILED', ['root', 'not allowed'], method);
      },
      { clock, callTimeoutMs: 2000 },
    );
    await expect(s.call('pool.get_all', [], { retries: 3 })).rejects.toMatchObject({ code: 'SESSION_AUTHORIZATION_FAILED' });
    expect(log).toHaveLength(1);
    expect(log[0]?.timeoutMs).toBeGreaterThanOrEqual(MIN_LOGIN_TIMEOUT_MS);
    expect(MIN_LOGIN_TIMEOUT_MS).toBeGreaterThan(5000);
    await expect(s.login()).rejects.toMatchObject({ code: 'SESSION_AUTHORIZATION_FAILED' });
    expect(log).toHaveLength(1);
  });
});

describe('XapiSession master failover (issue 13 §2)', () => {
  const M = 'member';
  const A = '10.0.0.1';
  const B = '10.0.0.2';

  /** A three-host pool: `master` answers logins, the others redirect to it; `dead` hosts do not answer. */
  function pool(log = logger) {
    const world = { master: A, dead: new Set<string>() };
    const addresses: Record<string, string> = { 'OpaqueRef:hM': M, 'OpaqueRef:hA': A, 'OpaqueRef:hB': B };
    const clock = new ManualClock();
    const transport = new ScriptedTransport(tcp, (method, params, host) => {
      if (world.dead.has(host)) throw new XapiTransportError('XAPI_TRANSPORT', `cannot reach XAPI at ${host}: connect ECONNREFUSED`);
      if (method === 'session.login_with_password') {
        if (host !== world.master) throw new XapiError('HOST_IS_SLAVE', [world.master], method);
        return `OpaqueRef:session-on-${host}`;
      }
      if (method === 'host.get_all') return Object.keys(addresses);
      if (method === 'host.get_address') return addresses[params[1] as string] ?? '';
      return host;
    });
    const s = new XapiSession({ transport, user: 'root', password: 's3cret', logger: log, clock, callTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 100, factor: 1, jitter: 0 } });
    const logins = (): string[] => transport.log.filter((l) => l.method === 'session.login_with_password').map((l) => l.host);
    return { world, clock, s, logins, transport };
  }

  async function callOn(clock: ManualClock, s: XapiSession): Promise<XapiValue> {
    let outcome: { value?: XapiValue; error?: unknown } | undefined;
    s.call('pool.get_all', []).then(
      (value) => (outcome = { value }),
      (error: unknown) => (outcome = { error }),
    );
    for (let i = 0; i < 10 && outcome === undefined; i++) await clock.advance(100);
    if (outcome === undefined) throw new Error('call did not settle');
    if (outcome.error !== undefined) throw outcome.error as Error;
    return outcome.value ?? null;
  }

  it('master A dies → back to the configured member M → redirected to the new master B', async () => {
    const { world, clock, s, logins } = pool();
    expect(await callOn(clock, s)).toBe(A);
    expect(s.poolMembers).toEqual([M, A, B]);
    world.dead.add(A);
    world.master = B;
    expect(await callOn(clock, s)).toBe(B);
    expect(logins()).toEqual([M, A, M, B]);
    expect(s.target).toBe(`http://${B}:80`);
    expect(s.generation).toBe(2);
  });

  it('the configured address dead too → the surviving members are tried in turn', async () => {
    const { world, clock, s, logins, transport } = pool();
    expect(await callOn(clock, s)).toBe(A);
    world.dead.add(A);
    world.dead.add(M);
    world.master = B;
    expect(await callOn(clock, s)).toBe(B);
    // M (configured) first, then the other members: A is dead too, B answers.
    expect(logins()).toEqual([M, A, M, A, B]);
    // Probes of other members are bounded, the login at the configured address is not.
    const timeouts = transport.log.filter((l) => l.method === 'session.login_with_password').map((l) => l.timeoutMs);
    expect(timeouts).toEqual([MIN_LOGIN_TIMEOUT_MS, MIN_LOGIN_TIMEOUT_MS, MIN_LOGIN_TIMEOUT_MS, PROBE_LOGIN_TIMEOUT_MS, PROBE_LOGIN_TIMEOUT_MS]);
    expect(s.target).toBe(`http://${B}:80`);
  });

  it('a survivor that is a member redirects to the master it names', async () => {
    const { world, clock, s, logins } = pool();
    expect(await callOn(clock, s)).toBe(A);
    world.dead.add(M);
    world.dead.add(A);
    // B is a member again; the new master is a fourth address that only B knows.
    world.master = '10.0.0.9';
    expect(await callOn(clock, s)).toBe('10.0.0.9');
    expect(logins()).toEqual([M, A, M, A, B, '10.0.0.9']);
  });

  it('the configured address is the master and dies → after two unanswered calls, the members are tried', async () => {
    const { world, clock, s, logins } = pool();
    world.master = M;
    expect(await callOn(clock, s)).toBe(M);
    world.dead.add(M);
    world.master = B;
    expect(await callOn(clock, s)).toBe(B);
    expect(logins()).toEqual([M, M, A, B]);
  });

  it('one unanswered call to the configured master keeps the session (a blip costs no resync)', async () => {
    const { world, clock, s, logins } = pool();
    world.master = M;
    expect(await callOn(clock, s)).toBe(M);
    world.dead.add(M);
    const p = s.call('pool.get_all', []);
    await clock.tick();
    world.dead.delete(M);
    await clock.advance(100);
    expect(await p).toBe(M);
    expect(logins()).toEqual([M]);
    expect(s.generation).toBe(1);
  });

  it('a whole pool down: the failover is logged at warn once per outage, not at every login retry', async () => {
    const lines: string[] = [];
    const { world, clock, s } = pool(pino({ level: 'info' }, { write: (l: string) => lines.push(l) }));
    expect(await callOn(clock, s)).toBe(A);
    for (const h of [M, A, B]) world.dead.add(h);
    const p = s.call('pool.get_all', [], { retries: 20 });
    await clock.advance(1000);
    const warnings = (): string[] => lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings().filter((m) => m.includes('trying other pool members'))).toHaveLength(1);
    world.dead.clear();
    await clock.advance(100);
    expect(await p).toBe(A);
  });

  it('without known members a lone host keeps its session across a blip (no re-login)', async () => {
    const clock = new ManualClock();
    let down = 1;
    const { s } = session(
      (method) => {
        if (method === 'session.login_with_password') return 'OpaqueRef:s';
        if (down-- > 0) throw new XapiTransportError('XAPI_TRANSPORT', 'connect ECONNRESET');
        return 'ok';
      },
      { clock, backoff: { initialMs: 10, maxMs: 10, factor: 1, jitter: 0 } },
    );
    await s.login();
    const p = s.call('pool.get_all', []);
    await clock.advance(10);
    expect(await p).toBe('ok');
    expect(s.generation).toBe(1);
  });
});
