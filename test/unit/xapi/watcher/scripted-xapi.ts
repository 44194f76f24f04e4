import { AbortedError } from '../../../../src/errors.js';
import type { XapiStruct, XapiValue } from '../../../../src/xapi/codec/types.js';
import { XapiError } from '../../../../src/xapi/errors.js';
import type { SessionCallOptions, XapiCaller } from '../../../../src/xapi/session.js';

export const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
export const ref = (i: number): string => `OpaqueRef:${uuid(i)}`;

/** A token as xapi writes it (`%020Ld,%020Ld`). */
export const token = (generation: number): string => `${String(generation).padStart(20, '0')},${'0'.padStart(20, '0')}`;

export interface RecordedCall {
  readonly method: string;
  readonly params: readonly XapiValue[];
}

/** An `event.from` the test answers: resolve it with events, or let the watcher abandon it. */
export interface PendingPoll {
  readonly classes: readonly string[];
  readonly token: string;
  readonly signal: AbortSignal | undefined;
  answer(events: readonly XapiValue[], nextToken: string, counts?: Record<string, number | string>): void;
  fail(err: Error): void;
}

type Handler = (params: readonly XapiValue[], options: SessionCallOptions | undefined) => XapiValue | Promise<XapiValue>;

/**
 * A scripted XAPI: a small database of pool, hosts, VIFs, VMs and networks answering the calls the
 * watcher makes, every call recorded; `event.from` calls wait in `polls` until the test answers them.
 * `override(method, handler)` scripts a method (an error, an undecodable answer...).
 */
export class ScriptedXapi implements XapiCaller {
  generation = 1;
  readonly calls: RecordedCall[] = [];
  readonly polls: PendingPoll[] = [];
  /** The database generation `event.inject` reports. */
  dbGeneration = 100;
  readonly poolRef = 'OpaqueRef:pool';
  pool: XapiStruct = { uuid: uuid(0xf00), master: ref(0xa00), other_config: {} };
  /** host ref → record; `thisHostRef` is what session.get_this_host answers (the master, say). */
  readonly hosts = new Map<string, XapiStruct>([
    [ref(0xa00), hostRecord(0xa00)],
    [ref(0xa01), hostRecord(0xa01)],
  ]);
  sessionHostRef = ref(0xa00);
  readonly vifs = new Map<string, XapiStruct>();
  readonly vms = new Map<string, XapiStruct>();
  readonly networks = new Map<string, XapiStruct>();
  private readonly overrides = new Map<string, Handler>();

  override(method: string, handler: Handler | undefined): void {
    if (handler === undefined) this.overrides.delete(method);
    else this.overrides.set(method, handler);
  }

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  /** The `event.from` the watcher is waiting on (the last one issued, not abandoned). */
  get poll(): PendingPoll | undefined {
    return this.polls.findLast((p) => p.signal?.aborted !== true);
  }

  addVif(i: number, vm: number, network: number, otherConfig: Record<string, string> = {}): string {
    this.vifs.set(ref(i), { uuid: uuid(i), device: '0', MAC: 'aa:bb', VM: ref(vm), network: ref(network), other_config: otherConfig });
    return uuid(i);
  }

  addVm(i: number, residentOn = 'OpaqueRef:NULL', vifs: number[] = []): string {
    this.vms.set(ref(i), { uuid: uuid(i), resident_on: residentOn, domid: '1', is_control_domain: false, other_config: {}, VIFs: vifs.map(ref) });
    return uuid(i);
  }

  addNetwork(i: number, bridge: string): void {
    this.networks.set(ref(i), { uuid: uuid(i), bridge, other_config: {} });
  }

  call(method: string, params: readonly XapiValue[], options?: SessionCallOptions): Promise<XapiValue> {
    this.calls.push({ method, params });
    if (options?.signal?.aborted === true) return Promise.reject(new AbortedError());
    try {
      const override = this.overrides.get(method);
      if (override !== undefined) return Promise.resolve(override(params, options));
      if (method === 'event.from') return this.eventFrom(params, options);
      return Promise.resolve(this.answer(method, params));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  callOnSelf(method: string, params: readonly XapiValue[], options?: SessionCallOptions): Promise<XapiValue> {
    return this.call(method, params, options);
  }

  private eventFrom(params: readonly XapiValue[], options: SessionCallOptions | undefined): Promise<XapiValue> {
    return new Promise((resolve, reject) => {
      const signal = options?.signal;
      signal?.addEventListener('abort', () => { reject(signal.reason as Error); }, { once: true });
      this.polls.push({
        classes: params[0] as string[],
        token: params[1] as string,
        signal,
        answer: (events, nextToken, counts = {}) => { resolve({ events: [...events], token: nextToken, valid_ref_counts: counts }); },
        fail: reject,
      });
    });
  }

  private answer(method: string, params: readonly XapiValue[]): XapiValue {
    const [cls, name] = method.split('.') as [string, string];
    const table = cls === 'VIF' ? this.vifs : cls === 'VM' ? this.vms : cls === 'network' ? this.networks : cls === 'host' ? this.hosts : undefined;
    switch (method) {
      case 'pool.get_all':
        return [this.poolRef];
      case 'pool.get_all_records':
        return { [this.poolRef]: this.pool };
      case 'event.inject':
        return token(this.dbGeneration++);
      case 'session.get_this_host':
        return this.sessionHostRef;
      default:
    }
    if (table === undefined) throw new XapiError('MESSAGE_METHOD_UNKNOWN', [method], method);
    const filter = typeof params[0] === 'string' ? params[0] : '';
    const matching = (): [string, XapiStruct][] => {
      const terms = [...filter.matchAll(/field "(\w+)"="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? ''] as const);
      return [...table].filter(([r, rec]) => terms.some(([col, v]) => (col === 'uuid' ? rec.uuid : rec[col]) === v || (col === 'ref' && r === v)));
    };
    switch (name) {
      case 'get_all_records_where':
        return Object.fromEntries(matching());
      case 'get_all_where':
        return matching().map(([r]) => r);
      case 'get_by_uuid': {
        const found = [...table].find(([, rec]) => rec.uuid === params[0]);
        if (found === undefined) throw new XapiError('UUID_INVALID', [cls, text(params[0])], method);
        return found[0];
      }
      default: {
        const rec = table.get(params[0] as string);
        if (rec === undefined) throw new XapiError('HANDLE_INVALID', [cls, text(params[0])], method);
        if (name === 'get_record') return rec;
        const field = name.replace(/^get_/, '');
        const value = rec[field];
        if (value === undefined) throw new XapiError('MESSAGE_METHOD_UNKNOWN', [method], method);
        return value;
      }
    }
  }
}

function hostRecord(i: number): XapiStruct {
  return { uuid: uuid(i), hostname: `host-${i}`, software_version: {}, other_config: {}, resident_VMs: [], current_operations: {} };
}

/** An `event.from` entry. */
export function event(cls: string, operation: 'add' | 'mod' | 'del', objRef: string, snapshot?: XapiValue): XapiValue {
  return { id: '1', timestamp: '0', class: cls, operation, ref: objRef, ...(snapshot !== undefined ? { snapshot } : {}) };
}

function text(v: XapiValue | undefined): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
