import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { AbortedError, CodedError } from '../errors.js';
import { isTransient } from '../retry.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffPolicy } from '../time/backoff.js';
import { delay, realClock, type Clock } from '../time/clock.js';
import type { XapiValue } from './codec/types.js';
import { XapiError, XapiTransportError } from './errors.js';
import { isUnreachable, PoolTargets } from './pool-failover.js';
import { DEFAULT_CALL_TIMEOUT_MS, describeEndpoint, XAPI_ORIGINATOR, type XapiTransport } from './transport.js';

/** What a call reports to metrics: `outcome` is `ok` or the error code. */
export interface XapiCallEvent {
  readonly method: string;
  readonly durationMs: number;
  readonly outcome: string;
}

export interface XapiSessionEvents {
  /** One per wire call (login included). */
  call: [XapiCallEvent];
  /** A login after the first one: the previous session was lost (SESSION_INVALID or transport). */
  relogin: [];
  /** `valid` flips: a usable session exists (true) or not (false). For readiness. */
  state: [{ valid: boolean }];
  /** `SESSION_AUTHENTICATION_FAILED`: wrong credentials; retried only after `authRetryDelayMs`. */
  authFailed: [XapiError];
}

export interface XapiSessionOptions {
  readonly transport: XapiTransport;
  readonly user: string;
  readonly password: string;
  readonly logger: Logger;
  /** Transient failures are retried this many times per call (default 3), with `backoff`. */
  readonly retries?: number;
  readonly backoff?: BackoffPolicy;
  /** After an authentication failure, further logins fail fast until this delay passed (default 30 s). */
  readonly authRetryDelayMs?: number;
  /** The transport's per-call timeout; the login gets at least {@link MIN_LOGIN_TIMEOUT_MS}. */
  readonly callTimeoutMs?: number;
  /** Backoff waits and the authentication hold-off run on this clock (default `realClock`). */
  readonly clock?: Clock;
  /** Jitter source of the backoff (default Math.random). */
  readonly random?: () => number;
}

export interface SessionCallOptions {
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs?: number | undefined;
  /** Overrides the session's transient-retry count for this call (0 = one attempt). */
  readonly retries?: number | undefined;
}

/** The part of a session lookups and the watcher need; tests script it. */
export interface XapiCaller {
  call(method: string, params: readonly XapiValue[], options?: SessionCallOptions): Promise<XapiValue>;
  /** `method(session, session, ...params)`: calls whose first argument is the session itself (`session.get_this_host`). */
  callOnSelf(method: string, params: readonly XapiValue[], options?: SessionCallOptions): Promise<XapiValue>;
  /** Increments at every successful login; a change means XAPI may have restarted (resynchronise). */
  readonly generation: number;
}

const LOGIN = 'session.login_with_password';
const MAX_MASTER_REDIRECTS = 2;
const REDACTED_REF = 'OpaqueRef:<session>';

/**
 * xapi answers a failed password login only after sleeping 5 s, against brute force
 * (xapi-project/xen-api ocaml/xapi/xapi_session.ml:1025-1028, `thread_delay_and_raise_error`). A
 * login timeout near that would turn every wrong password into a transport timeout, retried at
 * once; the login therefore waits at least this long for its answer.
 */
export const MIN_LOGIN_TIMEOUT_MS = 20_000;
/**
 * The login timeout of a failover probe of another member: a dead member must not hold the search
 * for the full login timeout (XO bounds its probes likewise, index.mjs:1152), while a refusal after
 * xapi's 5 s delay still arrives in time.
 */
export const PROBE_LOGIN_TIMEOUT_MS = 10_000;
/** Refused logins, both answered after the 5 s delay above; retried only after `authRetryDelayMs`. */
const AUTH_FAILURES = new Set(['SESSION_AUTHENTICATION_FAILED', 'SESSION_AUTHORIZATION_FAILED']);

/**
 * One XAPI session: login with a distinctive originator (docs/xapi.md §4: XAPI caps
 * anonymous sessions), one re-login and retry on `SESSION_INVALID`, `HOST_IS_SLAVE` redirects on
 * login, transient failures retried with capped backoff. The password and the session ref never
 * appear in a log line or an error message.
 */
export class XapiSession extends EventEmitter<XapiSessionEvents> implements XapiCaller {
  private readonly targets: PoolTargets;
  private ref: string | undefined;
  private loginInFlight: Promise<string> | undefined;
  private authFailure: { error: XapiError; until: number } | undefined;
  private gen = 0;
  private reachable = true;
  private closed = false;
  private readonly options: XapiSessionOptions;
  private readonly clock: Clock;
  private readonly loginTimeoutMs: number;
  private failoverWarned = false;

  constructor(options: XapiSessionOptions) {
    super();
    this.options = options;
    this.targets = new PoolTargets(options.transport, options.logger);
    this.clock = options.clock ?? realClock;
    this.loginTimeoutMs = Math.max(options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS, MIN_LOGIN_TIMEOUT_MS);
  }

  /** A session exists and the last call reached XAPI (readiness). */
  get valid(): boolean {
    return this.ref !== undefined && this.reachable;
  }

  get generation(): number {
    return this.gen;
  }

  get target(): string {
    return describeEndpoint(this.targets.current.endpoint);
  }

  /** The pool members' addresses learned at the last login (failover candidates). */
  get poolMembers(): readonly string[] {
    return this.targets.knownMembers;
  }

  call(method: string, params: readonly XapiValue[], options: SessionCallOptions = {}): Promise<XapiValue> {
    return this.invoke(method, (ref) => [ref, ...params], options);
  }

  callOnSelf(method: string, params: readonly XapiValue[], options: SessionCallOptions = {}): Promise<XapiValue> {
    return this.invoke(method, (ref) => [ref, ref, ...params], options);
  }

  /** Ensures a session exists (logging in if needed); resolves when one does. */
  async login(signal?: AbortSignal): Promise<void> {
    await this.retrying('login', () => raceAbort(this.ensureRef(), signal, LOGIN), { signal });
  }

  /** Best-effort logout, then the transport's connections are closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ref = this.ref;
    this.setRef(undefined);
    if (ref !== undefined) {
      try {
        await this.wire('session.logout', [ref], { timeoutMs: 2000 });
      } catch {
        // The session dies with XAPI's GC anyway (docs/xapi.md §4, inactive_session_timeout).
      }
    }
    this.targets.close();
  }

  private async invoke(method: string, paramsFor: (ref: string) => XapiValue[], options: SessionCallOptions): Promise<XapiValue> {
    return this.retrying(method, () => this.attempt(method, paramsFor, options), options);
  }

  /**
   * Runs `fn`, retrying transient failures `retries` times with the one backoff of the daemon
   * (src/time/backoff.ts), waiting on the session's clock.
   */
  private async retrying<T>(what: string, fn: () => Promise<T>, options: SessionCallOptions): Promise<T> {
    const signal = options.signal;
    const retries = options.retries ?? this.options.retries ?? 3;
    const backoff = new Backoff(this.options.backoff ?? DEFAULT_BACKOFF, this.options.random);
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const aborted = signal?.aborted === true;
        if (aborted && !(err instanceof CodedError)) throw new AbortedError(`${what}: aborted`);
        if (this.closed || aborted || attempt > retries || !isTransient(err)) throw err;
        const waitMs = backoff.failure(this.clock.now());
        this.options.logger.debug({ method: what, attempt, retryInMs: waitMs, err: describe(err) }, 'XAPI call failed, retrying');
        try {
          await delay(this.clock, waitMs, signal);
        } catch {
          throw new AbortedError(`${what}: aborted`);
        }
      }
    }
  }

  private async attempt(method: string, paramsFor: (ref: string) => XapiValue[], options: SessionCallOptions): Promise<XapiValue> {
    const ref = await raceAbort(this.ensureRef(), options.signal, method);
    const transport = this.targets.current;
    try {
      return await this.wire(method, paramsFor(ref), options, ref);
    } catch (err) {
      // The host the session lives on stopped answering: the next attempt logs in again, through
      // the configured address or a surviving member (./pool-failover.ts).
      if (isUnreachable(err) && this.targets.lost(transport) && this.ref === ref) this.setRef(undefined);
      if (!(err instanceof XapiError) || err.code !== 'SESSION_INVALID') throw err;
      // Reference §4: SESSION_INVALID means the ref expired or XAPI restarted; log in again ONCE
      // and retry (as XO does). Another call may already have replaced the ref.
      if (this.ref === ref) this.setRef(undefined);
      this.options.logger.info({ method }, 'XAPI session invalid, logging in again');
      const fresh = await raceAbort(this.ensureRef(), options.signal, method);
      return await this.wire(method, paramsFor(fresh), options, fresh);
    }
  }

  private ensureRef(): Promise<string> {
    if (this.closed) return Promise.reject(new AbortedError('XAPI session closed'));
    if (this.ref !== undefined) return Promise.resolve(this.ref);
    if (this.authFailure !== undefined && this.clock.now() < this.authFailure.until) return Promise.reject(this.authFailure.error);
    if (this.loginInFlight === undefined) {
      // Shared by concurrent callers, so not tied to any one caller's signal.
      this.loginInFlight = this.doLogin().finally(() => {
        this.loginInFlight = undefined;
      });
    }
    return this.loginInFlight;
  }

  /**
   * Logs in at the current target; when it does not answer, at the configured address and then at
   * every other known pool member in turn (./pool-failover.ts). An answer that refuses us (wrong
   * password, say) ends the search: every member would say the same.
   */
  private async doLogin(): Promise<string> {
    const first = this.targets.current;
    try {
      return await this.loginVia(first);
    } catch (err) {
      if (!isUnreachable(err) || !this.targets.redirectable) throw err;
      const survivors = this.targets.survivors(first);
      if (survivors.length === 0) throw err;
      // Once per outage at warn (a login is retried with backoff for as long as it lasts).
      const level = this.failoverWarned ? 'debug' : 'warn';
      this.failoverWarned = true;
      this.options.logger[level]({ xapi: describeEndpoint(first.endpoint), candidates: survivors.map((t) => describeEndpoint(t.endpoint)), err: describe(err) }, 'XAPI host unreachable; trying other pool members');
      for (const candidate of survivors) {
        try {
          return await this.loginVia(candidate, Math.min(this.loginTimeoutMs, PROBE_LOGIN_TIMEOUT_MS));
        } catch (probeErr) {
          this.targets.discard(candidate);
          if (!isUnreachable(probeErr)) throw probeErr;
        }
      }
      throw err;
    }
  }

  /** A login through `start`, following `HOST_IS_SLAVE` (docs/xapi.md §4); the host that accepts it is adopted. */
  private async loginVia(start: XapiTransport, timeoutMs = this.loginTimeoutMs): Promise<string> {
    const { user, password } = this.options;
    let transport = start;
    for (let redirects = 0; ; redirects++) {
      try {
        const result = await this.wire(LOGIN, [user, password, '1.0', XAPI_ORIGINATOR], { timeoutMs }, undefined, transport);
        if (typeof result !== 'string' || result === '') throw new XapiTransportError('XAPI_PROTOCOL', 'answer is not a session ref', { method: LOGIN });
        this.targets.adopt(transport);
        this.authFailure = undefined;
        this.failoverWarned = false;
        const relogin = this.gen > 0;
        this.gen++;
        this.setRef(result);
        this.options.logger.info({ xapi: this.target, relogin }, 'XAPI session established');
        if (relogin) this.emit('relogin');
        if (this.targets.redirectable) void this.learnPoolMembers(result);
        return result;
      } catch (err) {
        // A host reached by redirect that did not log us in is not kept (`start` is the caller's).
        if (transport !== start) this.targets.discard(transport);
        if (!(err instanceof XapiError)) throw err;
        if (err.code === 'HOST_IS_SLAVE' && redirects < MAX_MASTER_REDIRECTS) {
          const next = this.targets.toward(err.params[0] ?? '');
          if (next === undefined) throw err;
          this.options.logger.info({ from: describeEndpoint(transport.endpoint), to: describeEndpoint(next.endpoint) }, 'XAPI host is a pool member; following to the master');
          transport = next;
          continue;
        }
        if (AUTH_FAILURES.has(err.code)) {
          const holdOffMs = this.options.authRetryDelayMs ?? 30_000;
          this.authFailure = { error: err, until: this.clock.now() + holdOffMs };
          this.options.logger.error({ xapi: describeEndpoint(transport.endpoint), user, retryInMs: holdOffMs }, `XAPI rejected the credentials (${err.code})`);
          this.emit('authFailed', err);
        }
        throw err;
      }
    }
  }

  /**
   * Learns every pool member's `host.address` (failover candidates), best effort: `host.get_all`
   * then `host.get_address` per host, a few bytes each, where `host.get_all_records` (what XO
   * calls, xen-orchestra packages/xen-api/index.mjs:1083-1087) would carry every host's whole record.
   */
  private async learnPoolMembers(ref: string): Promise<void> {
    try {
      const hosts = await this.wire('host.get_all', [ref], {}, ref);
      if (!Array.isArray(hosts)) return;
      const addresses = await Promise.all((hosts as readonly XapiValue[]).map((h) => this.wire('host.get_address', [ref, h], {}, ref)));
      if (this.ref !== ref) return;
      this.targets.setMembers(addresses.filter((a): a is string => typeof a === 'string'));
    } catch (err) {
      this.options.logger.debug({ err: describe(err) }, 'XAPI pool members not learned; failover limited to the configured address');
    }
  }

  /** One wire call, timed and reported; the session ref is scrubbed from any error. */
  private async wire(method: string, params: XapiValue[], options: SessionCallOptions, ref?: string, transport = this.targets.current): Promise<XapiValue> {
    const started = performance.now();
    try {
      const value = await transport.call(method, params, { signal: options.signal, timeoutMs: options.timeoutMs });
      if (transport === this.targets.current) this.targets.answered();
      this.emit('call', { method, durationMs: performance.now() - started, outcome: 'ok' });
      this.setReachable(true);
      return value;
    } catch (err) {
      const code: string = err instanceof CodedError ? (err as CodedError<string>).code : 'ERROR';
      this.emit('call', { method, durationMs: performance.now() - started, outcome: code });
      // A deliberate abort (shutdown, the watcher re-subscribing) is not a failure worth a line.
      if (code !== 'ABORTED') this.options.logger.debug({ method, outcome: code }, 'XAPI call failed');
      if (err instanceof XapiError && transport === this.targets.current) this.targets.answered();
      if (err instanceof XapiError) this.setReachable(true);
      else if (code !== 'ABORTED') this.setReachable(false);
      if (err instanceof XapiError && ref !== undefined && err.params.includes(ref)) {
        throw new XapiError(err.code, err.params.map((p) => (p === ref ? REDACTED_REF : p)), err.method);
      }
      throw err;
    }
  }

  private setRef(ref: string | undefined): void {
    const was = this.valid;
    this.ref = ref;
    if (was !== this.valid) this.emit('state', { valid: this.valid });
  }

  private setReachable(reachable: boolean): void {
    if (this.reachable === reachable) return;
    const was = this.valid;
    this.reachable = reachable;
    if (was !== this.valid) this.emit('state', { valid: this.valid });
  }
}

/** Rejects with `AbortedError` when `signal` fires first; the shared promise itself runs on. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(new AbortedError(`${what}: aborted`));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(new AbortedError(`${what}: aborted`));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

function describe(err: unknown): string {
  return err instanceof CodedError ? `${err.code}: ${err.message}` : String(err);
}
