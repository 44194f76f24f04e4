import { setMember } from './wire/values.js';
import type { SimCall, SimStruct, SimValue } from './wire/values.js';
import type { IdSource } from './ids.js';
import { parseSubscriptions, parseToken, scanEvents, tokenOf } from './events.js';
import { SIM_CLASSES, SimStateError, type SimClass, type SimRow, type SimState } from './state.js';
import { evalWhere, MissingField, parseWhere, uuidDisjunction, WhereSyntaxError } from './where.js';

/** An XAPI failure answer: `code` and string params, exactly as XAPI raises them. */
export class SimFailure extends Error {
  constructor(
    readonly code: string,
    readonly params: readonly string[] = [],
  ) {
    super(`${code} ${params.join(' ')}`);
  }
}

/** The call's HTTP connection went away: nothing is answered. */
export class SimAborted extends Error {}

/** Where a call came in: the host whose endpoint received it, over TCP or its unix socket. */
export interface CallContext {
  readonly via: 'tcp' | 'unix';
  readonly hostRef: string;
}

export interface ApiResult {
  readonly value: SimValue;
  /** XML-RPC only: answer without the Status/Value envelope (`system.listMethods`, docs/xapi.md §2). */
  readonly bare?: boolean;
}

export interface ApiOptions {
  readonly state: SimState;
  readonly ids: IdSource;
  /**
   * When set, a TCP login requires these credentials; without them any TCP login is accepted (a
   * test convenience). The unix socket accepts any credentials, as dom0's does (`Context.preauth`
   * → root, xapi-project/xen-api ocaml/xapi/xapi_session.ml:959-972).
   */
  readonly credentials?: { readonly user: string; readonly password: string };
  /** Delay before a failed TCP login answers (xapi_session.ml:1025-1028: 5 s). */
  readonly loginFailureDelayMs: number;
  /** Read on every event.inject: true answers MESSAGE_METHOD_UNKNOWN (hosts without the call). */
  readonly injectUnknown: () => boolean;
  /** Batching delay before and between event.from scans (XAPI: 50 ms, docs/xapi.md §5.1). */
  readonly eventDelayMs: number;
  /** Read on every event.from scan: while true, event.from does not return. */
  readonly eventFromHang: () => boolean;
}

interface Session {
  readonly user: string;
  readonly originator: string;
  /** The host that processed the login: what `session.get_this_host` returns (xapi_session.ml:662, :968-969). */
  readonly thisHost: string;
}

function str(v: SimValue | undefined): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

function isStruct(v: SimValue | undefined): v is SimStruct {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const CLASS_MESSAGES = [
  'get_all',
  'get_all_where',
  'get_all_records',
  'get_all_records_where',
  'get_by_uuid',
  'get_record',
  'get_uuid',
  'get_other_config',
  'add_to_other_config',
  'remove_from_other_config',
  'set_other_config',
] as const;

/** Parameter counts including the session argument (MESSAGE_PARAMETER_COUNT_MISMATCH). */
const ARITY: Readonly<Record<string, number>> = {
  get_all: 1,
  get_all_where: 2,
  get_all_records: 1,
  get_all_records_where: 2,
  get_by_uuid: 2,
  get_record: 2,
  add_to_other_config: 4,
  remove_from_other_config: 3,
  set_other_config: 3,
};

/** The XAPI methods the simulator serves, over either wire protocol. */
export class SimApi {
  private readonly sessions = new Map<string, Session>();
  private readonly issued: string[] = [];
  private abandoned = 0;
  private abandonedTotal = 0;
  /** Timers of blocked event.from waiters and of delayed login failures, cleared by close(). */
  private readonly closing = new AbortController();

  constructor(private readonly o: ApiOptions) {}

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Every session ref ever handed out, oldest first (tests check that none leaks into logs). */
  get issuedSessions(): readonly string[] {
    return this.issued;
  }

  /** Blocked event.from calls whose client has gone (they live on until timeout or a matching change). */
  get abandonedWaiters(): number {
    return this.abandoned;
  }

  get abandonedWaitersTotal(): number {
    return this.abandonedTotal;
  }

  /** Ends every pending wait (simulator shutdown). */
  close(): void {
    this.closing.abort();
  }

  /** Destroys every session: the next call with an old ref fails with SESSION_INVALID. */
  invalidateSessions(): void {
    this.sessions.clear();
    this.o.state.notify();
  }

  async handle(call: SimCall, signal: AbortSignal, ctx: CallContext): Promise<ApiResult> {
    const { method, params } = call;
    const dot = method.indexOf('.');
    const prefix = dot < 0 ? method : method.slice(0, dot);
    const message = dot < 0 ? '' : method.slice(dot + 1);
    switch (method) {
      case 'system.listMethods':
        return { value: this.listMethods(), bare: true };
      case 'session.login_with_password':
        return { value: await this.login(method, params, ctx) };
      case 'session.logout':
        this.arity(method, params, 1);
        this.session(params[0]);
        this.sessions.delete(str(params[0]));
        this.o.state.notify();
        return { value: '' };
      case 'session.get_this_host':
        this.arity(method, params, 2);
        this.session(params[0]);
        return { value: this.session(params[1]).thisHost };
      case 'event.from':
        this.arity(method, params, 4);
        this.session(params[0]);
        return { value: await this.eventFrom(str(params[0]), params[1], params[2], params[3], signal) };
      case 'event.inject':
        this.arity(method, params, 3);
        this.session(params[0]);
        if (this.o.injectUnknown()) throw new SimFailure('MESSAGE_METHOD_UNKNOWN', [method]);
        return { value: this.inject(str(params[1]), str(params[2])) };
    }
    const cls = SIM_CLASSES.find((c) => c === prefix);
    if (cls === undefined || message === '') throw new SimFailure('MESSAGE_METHOD_UNKNOWN', [method]);
    return { value: this.classCall(cls, message, method, params) };
  }

  private listMethods(): string[] {
    const out = ['system.listMethods', 'session.login_with_password', 'session.logout', 'session.get_this_host', 'event.from', 'event.inject'];
    for (const c of SIM_CLASSES) for (const m of CLASS_MESSAGES) out.push(`${c}.${m}`);
    return out;
  }

  private arity(method: string, params: readonly SimValue[], expected: number): void {
    if (params.length !== expected) throw new SimFailure('MESSAGE_PARAMETER_COUNT_MISMATCH', [method, String(expected), String(params.length)]);
  }

  private session(ref: SimValue | undefined): Session {
    const s = this.sessions.get(str(ref));
    if (s === undefined) throw new SimFailure('SESSION_INVALID', [str(ref)]);
    return s;
  }

  /** `login_with_password(uname, pwd[, version[, originator]])` (docs/xapi.md §4). */
  private async login(method: string, params: readonly SimValue[], ctx: CallContext): Promise<string> {
    if (params.length < 2 || params.length > 4) throw new SimFailure('MESSAGE_PARAMETER_COUNT_MISMATCH', [method, '4', String(params.length)]);
    const user = str(params[0]);
    const creds = this.o.credentials;
    if (ctx.via === 'tcp' && creds !== undefined && (user !== creds.user || str(params[1]) !== creds.password)) {
      // xapi_session.ml:1025-1040: the failure is raised as [uname; msg] after a brute-force delay.
      await this.pause(this.o.loginFailureDelayMs);
      throw new SimFailure('SESSION_AUTHENTICATION_FAILED', [user, 'Authentication failure']);
    }
    const ref = this.o.ids.ref();
    this.sessions.set(ref, { user, originator: str(params[3]), thisHost: ctx.hostRef });
    this.issued.push(ref);
    return ref;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (ms <= 0 || this.closing.signal.aborted) {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.closing.signal.addEventListener('abort', done);
    });
  }

  /**
   * `event.inject(class, ref)` (xapi_event.ml:779-805): the class must be the row's table name
   * exactly (`tbl = _class`, case-sensitive); the answer is the token just below the touch.
   */
  private inject(className: string, ref: string): string {
    const cls = SIM_CLASSES.find((c) => c === className);
    if (cls === undefined || this.o.state.byRef(cls, ref) === undefined) throw new SimFailure('HANDLE_INVALID', [className, ref]);
    return tokenOf(this.o.state.inject(cls, ref));
  }

  /**
   * Resolves on the next DB change, at `deadline`, or at simulator close. The client's disconnect
   * does NOT end the wait: a blocked event.from ignores it (xapi_event.ml:438-458, `wait2` only
   * wakes on a matching change, a session deletion or the timer).
   */
  private waitForChange(deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const closing = this.closing.signal;
      if (closing.aborted) {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        closing.removeEventListener('abort', done);
        resolve();
      };
      const unsubscribe = this.o.state.onChange(done);
      const ms = Number.isFinite(deadline) ? Math.max(0, deadline - Date.now()) : 2 ** 31 - 1;
      const timer = setTimeout(done, Math.min(ms, 2 ** 31 - 1));
      closing.addEventListener('abort', done);
    });
  }

  /**
   * `event.from(session, classes, token, timeout)` (xapi_event.ml:736-777): blocks until something
   * matches or the timeout (seconds) expires, with a batching delay before and between scans.
   */
  private async eventFrom(sessionRef: string, classes: SimValue | undefined, token: SimValue | undefined, timeout: SimValue | undefined, signal: AbortSignal): Promise<SimValue> {
    const since = parseToken(str(token));
    if (since === undefined) throw new SimFailure('EVENT_FROM_TOKEN_PARSE_FAILURE', [str(token)]);
    if (!Array.isArray(classes)) throw new SimFailure('EVENT_SUBSCRIPTION_PARSE_FAILURE', [str(classes)]);
    const subs = parseSubscriptions((classes as readonly SimValue[]).map(str));
    const seconds = typeof timeout === 'number' ? timeout : Number.parseFloat(str(timeout));
    // A timeout that does not convert waits up to 24 h (xapi_event.ml:736-741).
    const deadline = Date.now() + (Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 24 * 3600 * 1000);
    const waiter = { abandoned: false };
    const onAbort = (): void => {
      waiter.abandoned = true;
      this.abandoned += 1;
      this.abandonedTotal += 1;
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.pause(this.o.eventDelayMs);
      for (;;) {
        while (this.o.eventFromHang() && !this.closing.signal.aborted) await this.waitForChange(Infinity);
        // A waiter whose session was destroyed gets SESSION_INVALID (xapi_event.ml:459-465).
        this.session(sessionRef);
        const batch = scanEvents(this.o.state, since, subs, this.sessions.size);
        if (batch.events.length > 0 || Date.now() >= deadline || this.closing.signal.aborted) return batch.value;
        await this.waitForChange(deadline);
        await this.pause(this.o.eventDelayMs);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (waiter.abandoned) this.abandoned -= 1;
    }
  }

  private row(cls: SimClass, ref: SimValue | undefined): SimRow {
    const row = this.o.state.byRef(cls, str(ref));
    if (row === undefined) throw new SimFailure('HANDLE_INVALID', [cls, str(ref)]);
    return row;
  }

  /**
   * The rows an expression of the `*_where` calls selects (db_cache_impl.ml:318-334): a filter that
   * does not parse is `INVALID_VALUE [expr; exn]` (exnHelper.ml:71-72); a column the table lacks
   * is `INTERNAL_ERROR ["missing field"; col; ""]`, raised only when a row is evaluated.
   */
  private where(cls: SimClass, source: string): SimRow[] {
    const state = this.o.state;
    let expr;
    try {
      expr = parseWhere(source);
    } catch (err) {
      if (err instanceof WhereSyntaxError) throw new SimFailure('INVALID_VALUE', [source, err.message]);
      throw err;
    }
    const uuids = uuidDisjunction(expr);
    if (uuids !== undefined) return [...uuids].map((u) => state.findByUuid(cls, u)).filter((r) => r !== undefined);
    try {
      return state.all(cls).filter((r) => evalWhere(expr, state.columns(r)));
    } catch (err) {
      // exnHelper.ml:40-46: DBCache_NotFound other than "missing row" is INTERNAL_ERROR [reason; p1; p2].
      if (err instanceof MissingField) throw new SimFailure('INTERNAL_ERROR', ['missing field', err.column, '']);
      throw err;
    }
  }

  private records(rows: readonly SimRow[]): SimValue {
    const out: Record<string, SimValue> = {};
    for (const r of rows) setMember(out, r.ref, this.o.state.record(r));
    return out;
  }

  private classCall(cls: SimClass, message: string, method: string, params: readonly SimValue[]): SimValue {
    const state = this.o.state;
    const expected = ARITY[message] ?? (message.startsWith('get_') ? 2 : undefined);
    if (expected === undefined) throw new SimFailure('MESSAGE_METHOD_UNKNOWN', [method]);
    this.arity(method, params, expected);
    this.session(params[0]);
    try {
      switch (message) {
        case 'get_all':
          return state.all(cls).map((r) => r.ref);
        case 'get_all_records':
          return this.records(state.all(cls));
        case 'get_all_where':
          return this.where(cls, str(params[1])).map((r) => r.ref);
        case 'get_all_records_where':
          return this.records(this.where(cls, str(params[1])));
        case 'get_by_uuid': {
          const row = state.findByUuid(cls, str(params[1]));
          if (row === undefined) throw new SimFailure('UUID_INVALID', [cls, str(params[1])]);
          return row.ref;
        }
        case 'get_record':
          return state.record(this.row(cls, params[1]));
        case 'add_to_other_config': {
          const row = this.row(cls, params[1]);
          const key = str(params[2]);
          if (!state.addToOtherConfig(cls, row.ref, key, str(params[3]))) throw new SimFailure('MAP_DUPLICATE_KEY', [cls, 'other_config', row.uuid, key]);
          return '';
        }
        case 'remove_from_other_config':
          state.removeFromOtherConfig(cls, this.row(cls, params[1]).ref, str(params[2]));
          return '';
        case 'set_other_config': {
          const row = this.row(cls, params[1]);
          const map = params[2];
          if (!isStruct(map)) throw new SimFailure('FIELD_TYPE_ERROR', ['other_config']);
          state.setOtherConfig(cls, row.ref, Object.fromEntries(Object.entries(map).map(([k, v]) => [k, str(v)])));
          return '';
        }
        default: {
          // Generic field getter: get_<field> for any field of the record (get_bridge, get_VM, …). A
          // stored field is read as is: the derived ref sets cost a scan of the pool's VIFs and VMs.
          const row = this.row(cls, params[1]);
          const field = message.slice('get_'.length);
          const record = Object.hasOwn(row.fields, field) ? row.fields : state.record(row);
          if (!Object.hasOwn(record, field)) throw new SimFailure('MESSAGE_METHOD_UNKNOWN', [method]);
          return record[field] ?? '';
        }
      }
    } catch (err) {
      // A map key the simulator refuses to store (see checkMapKey): reported as XAPI would report a bad value.
      if (err instanceof SimStateError) throw new SimFailure('INVALID_VALUE', [method, err.message]);
      throw err;
    }
  }
}
