import { defineMember } from '../xapi/codec/safe-object.js';
import type { XapiCall, XapiStruct, XapiValue } from '../xapi/codec/types.js';
import type { IdSource } from './ids.js';
import { SIM_CLASSES, SimStateError, type SimClass, type SimRow, type SimState } from './state.js';
import { evalWhere, whereFields, parseWhere, uuidDisjunction, WhereSyntaxError } from './where.js';

/** An XAPI failure answer: `code` and string params, exactly as XAPI raises them. */
export class SimFailure extends Error {
  constructor(
    readonly code: string,
    readonly params: readonly string[] = [],
  ) {
    super(`${code} ${params.join(' ')}`);
  }
}

/** The waiter was abandoned because its HTTP connection went away. */
export class SimAborted extends Error {}

export interface ApiResult {
  readonly value: XapiValue;
  /** XML-RPC only: answer without the Status/Value envelope (`system.listMethods`, reference §2). */
  readonly bare?: boolean;
}

export interface ApiOptions {
  readonly state: SimState;
  readonly ids: IdSource;
  readonly thisHostRef: string;
  /** When set, login requires these credentials (else any, like the dom0 socket, reference §1.2). */
  readonly credentials?: { readonly user: string; readonly password: string };
  /** Batching delay before and between event.from scans (XAPI: 50 ms, reference §5.1). */
  readonly eventDelayMs: number;
  /** Read on every event.from scan: while true, event.from does not return. */
  readonly eventFromHang: () => boolean;
}

interface Session {
  readonly user: string;
  readonly originator: string;
}

const TOKEN = /^(\d+),(\d+)$/;
const pad20 = (n: number): string => String(n).padStart(20, '0');
const tokenOf = (gen: number): string => `${pad20(Math.max(0, gen))},${pad20(0)}`;

function str(v: XapiValue | undefined): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

function isStruct(v: XapiValue | undefined): v is XapiStruct {
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

  constructor(private readonly o: ApiOptions) {}

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Every session ref ever handed out, oldest first (tests check that none leaks into logs). */
  get issuedSessions(): readonly string[] {
    return this.issued;
  }

  /** Destroys every session: the next call with an old ref fails with SESSION_INVALID. */
  invalidateSessions(): void {
    this.sessions.clear();
    this.o.state.notify();
  }

  async handle(call: XapiCall, signal: AbortSignal): Promise<ApiResult> {
    const { method, params } = call;
    const dot = method.indexOf('.');
    const prefix = dot < 0 ? method : method.slice(0, dot);
    const message = dot < 0 ? '' : method.slice(dot + 1);
    switch (method) {
      case 'system.listMethods':
        return { value: this.listMethods(), bare: true };
      case 'session.login_with_password':
        return { value: this.login(method, params) };
      case 'session.logout':
        this.arity(method, params, 1);
        this.session(params[0]);
        this.sessions.delete(str(params[0]));
        this.o.state.notify();
        return { value: '' };
      case 'session.get_this_host':
        this.arity(method, params, 2);
        this.session(params[0]);
        this.session(params[1]);
        return { value: this.o.thisHostRef };
      case 'event.from':
        this.arity(method, params, 4);
        this.session(params[0]);
        return { value: await this.eventFrom(str(params[0]), params[1], params[2], params[3], signal) };
      case 'event.inject':
        this.arity(method, params, 3);
        this.session(params[0]);
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

  private arity(method: string, params: readonly XapiValue[], expected: number): void {
    if (params.length !== expected) throw new SimFailure('MESSAGE_PARAMETER_COUNT_MISMATCH', [method, String(expected), String(params.length)]);
  }

  private session(ref: XapiValue | undefined): Session {
    const s = this.sessions.get(str(ref));
    if (s === undefined) throw new SimFailure('SESSION_INVALID', [str(ref)]);
    return s;
  }

  /** `login_with_password(uname, pwd[, version[, originator]])` (reference §4). */
  private login(method: string, params: readonly XapiValue[]): string {
    if (params.length < 2 || params.length > 4) throw new SimFailure('MESSAGE_PARAMETER_COUNT_MISMATCH', [method, '4', String(params.length)]);
    const user = str(params[0]);
    const creds = this.o.credentials;
    // XAPI answers [uname; msg] after a 5 s brute-force delay; the simulator answers at once.
    if (creds !== undefined && (user !== creds.user || str(params[1]) !== creds.password)) {
      throw new SimFailure('SESSION_AUTHENTICATION_FAILED', [user, 'Authentication failure']);
    }
    const ref = this.o.ids.ref();
    this.sessions.set(ref, { user, originator: str(params[3]) });
    this.issued.push(ref);
    return ref;
  }

  private inject(className: string, ref: string): string {
    const cls = SIM_CLASSES.find((c) => c.toLowerCase() === className.toLowerCase());
    if (cls === undefined || this.o.state.byRef(cls, ref) === undefined) throw new SimFailure('HANDLE_INVALID', [className, ref]);
    // event.inject returns the token just before the injected change (reference §5.1).
    return tokenOf(this.o.state.touch(cls, ref) - 1);
  }

  private waitForChange(deadline: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(new SimAborted('connection closed'));
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        done();
        reject(new SimAborted('connection closed'));
      };
      const unsubscribe = this.o.state.onChange(() => {
        done();
        resolve();
      });
      const ms = Number.isFinite(deadline) ? Math.max(0, deadline - Date.now()) : 2 ** 31 - 1;
      const timer = setTimeout(() => {
        done();
        resolve();
      }, Math.min(ms, 2 ** 31 - 1));
      signal.addEventListener('abort', onAbort);
    });
  }

  private async sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (ms <= 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(new SimAborted('connection closed'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * `event.from(session, classes, token, timeout)` (reference §5.1): rows whose generation is past
   * the token, coalesced per object, classified add/mod/del, grouped adds → mods → dels; blocks
   * until something matches or the timeout (seconds) expires, with a batching delay.
   */
  private async eventFrom(sessionRef: string, classes: XapiValue | undefined, token: XapiValue | undefined, timeout: XapiValue | undefined, signal: AbortSignal): Promise<XapiValue> {
    const tokenText = str(token);
    const m = TOKEN.exec(tokenText);
    if (tokenText !== '' && m === null) throw new SimFailure('EVENT_FROM_TOKEN_PARSE_FAILURE', [tokenText]);
    const since = m === null ? 0 : Number(m[1]);
    if (!Array.isArray(classes)) throw new SimFailure('EVENT_SUBSCRIPTION_PARSE_FAILURE', [str(classes)]);
    // `*`, `<class>` or `<class>/<ref>`; only the class part is case-insensitive (xapi_event.ml:56-79).
    const subs = new Set(
      (classes as readonly XapiValue[]).map((c) => {
        const [cls = '', ...ref] = str(c).split('/');
        return ref.length === 0 ? cls.toLowerCase() : `${cls.toLowerCase()}/${ref.join('/')}`;
      }),
    );
    const seconds = typeof timeout === 'number' ? timeout : Number.parseFloat(str(timeout));
    // A timeout that does not convert waits up to 24 h (reference §5.1).
    const deadline = Date.now() + (Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 24 * 3600 * 1000);
    await this.sleep(this.o.eventDelayMs, signal);
    for (;;) {
      while (this.o.eventFromHang()) await this.waitForChange(Infinity, signal);
      // A waiter whose session was destroyed gets SESSION_INVALID (reference §4).
      this.session(sessionRef);
      const batch = this.scan(since, subs);
      if (batch.events.length > 0 || Date.now() >= deadline) return batch.value;
      await this.waitForChange(deadline, signal);
      await this.sleep(this.o.eventDelayMs, signal);
    }
  }

  private scan(since: number, subs: ReadonlySet<string>): { events: XapiValue[]; value: XapiValue } {
    const state = this.o.state;
    const wants = (cls: SimClass, ref: string): boolean => subs.has('*') || subs.has(cls.toLowerCase()) || subs.has(`${cls.toLowerCase()}/${ref}`);
    const adds: XapiValue[] = [];
    const mods: XapiValue[] = [];
    const dels: XapiValue[] = [];
    for (const cls of SIM_CLASSES) {
      for (const row of state.all(cls)) {
        if (row.modified <= since || !wants(cls, row.ref)) continue;
        const event = { id: String(row.modified), timestamp: '0.0', class: cls.toLowerCase(), operation: row.created > since ? 'add' : 'mod', ref: row.ref, snapshot: state.record(row) };
        (row.created > since ? adds : mods).push(event);
      }
    }
    for (const t of state.deletedSince(since)) {
      // Created and deleted within the window: no event at all (reference §5.1).
      if (t.created > since || !wants(t.cls, t.ref)) continue;
      dels.push({ id: String(t.deleted), timestamp: '0.0', class: t.cls.toLowerCase(), operation: 'del', ref: t.ref });
    }
    const counts: Record<string, XapiValue> = { session: this.sessions.size };
    for (const cls of SIM_CLASSES) counts[cls.toLowerCase()] = state.count(cls);
    const events = [...adds, ...mods, ...dels];
    return { events, value: { events, valid_ref_counts: counts, token: tokenOf(state.generation) } };
  }

  private row(cls: SimClass, ref: XapiValue | undefined): SimRow {
    const row = this.o.state.byRef(cls, str(ref));
    if (row === undefined) throw new SimFailure('HANDLE_INVALID', [cls, str(ref)]);
    return row;
  }

  /** The rows an expression of the `*_where` calls selects (reference §6); a bad one is INVALID_VALUE. */
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
    const fields = whereFields(expr);
    return state.all(cls).filter((r) => evalWhere(expr, state.dbRow(r, fields)));
  }

  private records(rows: readonly SimRow[]): XapiValue {
    const out: Record<string, XapiValue> = {};
    for (const r of rows) defineMember(out, r.ref, this.o.state.record(r));
    return out;
  }

  private classCall(cls: SimClass, message: string, method: string, params: readonly XapiValue[]): XapiValue {
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
