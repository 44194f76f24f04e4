import { EventEmitter } from 'node:events';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import { AbortedError, CodedError } from '../errors.js';
import { DEFAULT_BACKOFF, isTransient, type BackoffPolicy } from '../retry.js';
import type { XapiValue } from './codec/types.js';
import { XapiError, XapiTransportError } from './errors.js';
import { describeEndpoint, XAPI_ORIGINATOR, type XapiTransport } from './transport.js';

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
  readonly now?: () => number;
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
 * One XAPI session: login with a distinctive originator (reference/xapi.md §4: XAPI caps
 * anonymous sessions), one re-login and retry on `SESSION_INVALID`, `HOST_IS_SLAVE` redirects on
 * login, transient failures retried with capped backoff. The password and the session ref never
 * appear in a log line or an error message.
 */
export class XapiSession extends EventEmitter<XapiSessionEvents> implements XapiCaller {
  private transport: XapiTransport;
  private ref: string | undefined;
  private loginInFlight: Promise<string> | undefined;
  private authFailure: { error: XapiError; until: number } | undefined;
  private gen = 0;
  private reachable = true;
  private closed = false;
  private readonly options: XapiSessionOptions;
  private readonly now: () => number;

  constructor(options: XapiSessionOptions) {
    super();
    this.options = options;
    this.transport = options.transport;
    this.now = options.now ?? Date.now;
  }

  /** A session exists and the last call reached XAPI (readiness). */
  get valid(): boolean {
    return this.ref !== undefined && this.reachable;
  }

  get generation(): number {
    return this.gen;
  }

  get target(): string {
    return describeEndpoint(this.transport.endpoint);
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
        // The session dies with XAPI's GC anyway (reference §4, inactive_session_timeout).
      }
    }
    this.transport.close();
  }

  private async invoke(method: string, paramsFor: (ref: string) => XapiValue[], options: SessionCallOptions): Promise<XapiValue> {
    return this.retrying(method, () => this.attempt(method, paramsFor, options), options);
  }

  private async retrying<T>(what: string, fn: () => Promise<T>, options: SessionCallOptions): Promise<T> {
    const policy = this.options.backoff ?? DEFAULT_BACKOFF;
    const signal = options.signal;
    try {
      return await pRetry(fn, {
        retries: options.retries ?? this.options.retries ?? 3,
        minTimeout: policy.initialMs,
        maxTimeout: policy.maxMs,
        factor: policy.factor,
        randomize: policy.jitter > 0,
        signal,
        shouldRetry: ({ error }) => !this.closed && signal?.aborted !== true && isTransient(error),
        onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
          if (isTransient(error) && retriesLeft > 0) {
            this.options.logger.debug({ method: what, attempt: attemptNumber, err: describe(error) }, 'XAPI call failed, retrying');
          }
        },
      });
    } catch (err) {
      if (signal?.aborted === true && !(err instanceof CodedError)) throw new AbortedError(`${what}: aborted`);
      throw err;
    }
  }

  private async attempt(method: string, paramsFor: (ref: string) => XapiValue[], options: SessionCallOptions): Promise<XapiValue> {
    const ref = await raceAbort(this.ensureRef(), options.signal, method);
    try {
      return await this.wire(method, paramsFor(ref), options, ref);
    } catch (err) {
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
    if (this.authFailure !== undefined && this.now() < this.authFailure.until) return Promise.reject(this.authFailure.error);
    if (this.loginInFlight === undefined) {
      // Shared by concurrent callers, so not tied to any one caller's signal.
      this.loginInFlight = this.doLogin().finally(() => {
        this.loginInFlight = undefined;
      });
    }
    return this.loginInFlight;
  }

  private async doLogin(): Promise<string> {
    const { user, password } = this.options;
    for (let redirects = 0; ; redirects++) {
      try {
        const result = await this.wire(LOGIN, [user, password, '1.0', XAPI_ORIGINATOR], {});
        if (typeof result !== 'string' || result === '') throw new XapiTransportError('XAPI_PROTOCOL', 'answer is not a session ref', { method: LOGIN });
        this.authFailure = undefined;
        const relogin = this.gen > 0;
        this.gen++;
        this.setRef(result);
        this.options.logger.info({ xapi: this.target, relogin }, 'XAPI session established');
        if (relogin) this.emit('relogin');
        return result;
      } catch (err) {
        if (!(err instanceof XapiError)) throw err;
        if (err.code === 'HOST_IS_SLAVE' && redirects < MAX_MASTER_REDIRECTS) {
          const master = err.params[0];
          const next = master !== undefined && master !== '' ? this.transport.withHost(master) : undefined;
          if (next === undefined) throw err;
          this.options.logger.info({ from: this.target, to: describeEndpoint(next.endpoint) }, 'XAPI host is a pool member; following to the master');
          this.transport.close();
          this.transport = next;
          continue;
        }
        if (err.code === 'SESSION_AUTHENTICATION_FAILED') {
          const delay = this.options.authRetryDelayMs ?? 30_000;
          this.authFailure = { error: err, until: this.now() + delay };
          this.options.logger.error({ xapi: this.target, user, retryInMs: delay }, 'XAPI rejected the credentials (SESSION_AUTHENTICATION_FAILED)');
          this.emit('authFailed', err);
        }
        throw err;
      }
    }
  }

  /** One wire call, timed and reported; the session ref is scrubbed from any error. */
  private async wire(method: string, params: XapiValue[], options: SessionCallOptions, ref?: string): Promise<XapiValue> {
    const started = performance.now();
    try {
      const value = await this.transport.call(method, params, { signal: options.signal, timeoutMs: options.timeoutMs });
      this.emit('call', { method, durationMs: performance.now() - started, outcome: 'ok' });
      this.setReachable(true);
      return value;
    } catch (err) {
      const code: string = err instanceof CodedError ? (err as CodedError<string>).code : 'ERROR';
      this.emit('call', { method, durationMs: performance.now() - started, outcome: code });
      // A deliberate abort (shutdown, the watcher re-subscribing) is not a failure worth a line.
      if (code !== 'ABORTED') this.options.logger.debug({ method, outcome: code }, 'XAPI call failed');
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
