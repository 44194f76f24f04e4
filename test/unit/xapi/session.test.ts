import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { XapiValue } from '../../../src/xapi/codec/types.js';
import { XapiError, XapiTransportError } from '../../../src/xapi/errors.js';
import { XapiSession, type XapiCallEvent } from '../../../src/xapi/session.js';
import type { XapiEndpoint, XapiTransport } from '../../../src/xapi/transport.js';

const logger = pino({ level: 'silent' });
const FAST = { initialMs: 1, maxMs: 2, factor: 2, jitter: 0 };

type Script = (method: string, params: readonly XapiValue[], host: string) => XapiValue | Promise<XapiValue>;

class ScriptedTransport implements XapiTransport {
  readonly protocol = 'xmlrpc' as const;
  readonly log: { method: string; params: readonly XapiValue[]; host: string }[];
  constructor(
    readonly endpoint: XapiEndpoint,
    private readonly script: Script,
    log?: { method: string; params: readonly XapiValue[]; host: string }[],
  ) {
    this.log = log ?? [];
  }
  async call(method: string, params: readonly XapiValue[], options?: { signal?: AbortSignal }): Promise<XapiValue> {
    const host = this.endpoint.kind === 'unix' ? 'unix' : this.endpoint.host;
    this.log.push({ method, params, host });
    if (options?.signal?.aborted === true) throw new Error('aborted');
    return this.script(method, params, host);
  }
  withHost(host: string): XapiTransport | undefined {
    if (this.endpoint.kind === 'unix') return undefined;
    return new ScriptedTransport({ ...this.endpoint, host }, this.script, this.log);
  }
  close(): void {}
}

const tcp: XapiEndpoint = { kind: 'http', host: 'member', port: 80 };

function session(script: Script, extra: Partial<ConstructorParameters<typeof XapiSession>[0]> = {}, endpoint = tcp) {
  const transport = new ScriptedTransport(endpoint, script);
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
    expect(events.map((e) => [e.method, e.outcome])).toEqual([
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
    let clock = 0;
    const lines: string[] = [];
    const capture = pino({ level: 'trace' }, { write: (l: string) => lines.push(l) });
    const { s, log } = session(
      (method) => {
        throw new XapiError('SESSION_AUTHENTICATION_FAILED', ['root', 'Authentication failure'], method);
      },
      { now: () => clock, authRetryDelayMs: 30_000, logger: capture },
    );
    const reported: XapiError[] = [];
    s.on('authFailed', (e) => reported.push(e));
    await expect(s.call('pool.get_all', [])).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
    await expect(s.call('pool.get_all', [])).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
    clock = 29_999;
    await expect(s.login()).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
    expect(log).toHaveLength(1);
    clock = 30_000;
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
