import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { XapiValue } from '../../../src/xapi/codec/types.js';
import { parseWhere, type WhereExpr } from '../../../src/sim/where.js';
import { XapiError } from '../../../src/xapi/errors.js';
import {
  buildBridgeFilters,
  buildUuidFilters,
  getThisHost,
  isFilterableBridgeName,
  isRef,
  isUuid,
  lookupNetworksByBridge,
  lookupVifsByRef,
  lookupVifsByUuid,
  lookupVifsOfVms,
  lookupVmsScheduledOn,
} from '../../../src/xapi/lookups.js';
import type { XapiCaller } from '../../../src/xapi/session.js';

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

describe('buildUuidFilters', () => {
  it('builds one or-expression per chunk', () => {
    expect(buildUuidFilters([uuid(1), uuid(2), uuid(3)], 2)).toEqual([
      `field "uuid"="${uuid(1)}" or field "uuid"="${uuid(2)}"`,
      `field "uuid"="${uuid(3)}"`,
    ]);
    expect(buildUuidFilters([], 2)).toEqual([]);
    expect(() => buildUuidFilters([uuid(1)], 0)).toThrow(RangeError);
  });

  it('drops strings that are not UUIDs (the filter language has no escapes) and duplicates', () => {
    expect(buildUuidFilters(['a"b', `${uuid(1)}" or true or "`, uuid(1), uuid(1)], 10)).toEqual([`field "uuid"="${uuid(1)}"`]);
    expect(isUuid('6AB1B260-0000-4000-8000-000000000000')).toBe(true);
    expect(isUuid('6ab1b260-0000-4000-8000-00000000000')).toBe(false);
  });

  it('covers every valid uuid exactly once in ceil(n / size) chunks', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.uuid(), { maxLength: 60 }), fc.integer({ min: 1, max: 25 }), (uuids, size) => {
        const filters = buildUuidFilters(uuids, size);
        expect(filters.length).toBe(Math.ceil(uuids.length / size));
        const seen = filters.flatMap((f) => [...f.matchAll(/field "uuid"="([^"]+)"/g)].map((m) => m[1]));
        expect(seen.sort()).toEqual([...uuids].sort());
        for (const f of filters) expect(f.split(' or ').length).toBeLessThanOrEqual(size);
      }),
    );
  });
});

function scripted(answer: (method: string, params: readonly XapiValue[]) => XapiValue): XapiCaller & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    generation: 1,
    call: (method, params) => {
      calls.push(method);
      return Promise.resolve(answer(method, params));
    },
    callOnSelf: (method, params) => {
      calls.push(method);
      return Promise.resolve(answer(method, ['SELF', 'SELF', ...params]));
    },
  };
}

describe('lookups', () => {
  it('costs O(N / batch) calls; missing UUIDs are absent', async () => {
    const wanted = Array.from({ length: 1000 }, (_, i) => uuid(i));
    const caller = scripted((method, params) => {
      expect(method).toBe('VIF.get_all_records_where');
      const found: Record<string, XapiValue> = {};
      for (const m of (params[0] as string).matchAll(/"uuid"="([^"]+)"/g)) {
        const u = m[1] ?? '';
        if (u.endsWith('7')) continue; // these do not exist in XAPI
        found[`OpaqueRef:${u}`] = { uuid: u, device: '0', MAC: 'm', VM: 'OpaqueRef:vm', network: 'OpaqueRef:n', other_config: {} };
      }
      return found;
    });
    const result = await lookupVifsByUuid(caller, wanted, { batchSize: 200 });
    expect(caller.calls.length).toBe(5);
    expect(result.size).toBe(wanted.filter((u) => !u.endsWith('7')).length);
    expect(result.has(uuid(7))).toBe(false);
    expect(result.get(uuid(8))?.ref).toBe(`OpaqueRef:${uuid(8)}`);
  });

  it('propagates a failure as the typed error', async () => {
    const caller = scripted(() => {
      throw new XapiError('INVALID_VALUE', ['expr'], 'VIF.get_all_records_where');
    });
    await expect(lookupVifsByUuid(caller, [uuid(1)])).rejects.toMatchObject({ code: 'INVALID_VALUE' });
  });

  it('finds this host through get_this_host(session, session)', async () => {
    const caller = scripted((method, params): XapiValue => {
      expect(method === 'session.get_this_host' || method === 'host.get_record').toBe(true);
      if (method === 'session.get_this_host') {
        expect(params).toEqual(['SELF', 'SELF']);
        return 'OpaqueRef:h';
      }
      return { uuid: 'hu', hostname: 'h', software_version: {}, other_config: {} };
    });
    expect((await getThisHost(caller)).uuid).toBe('hu');
  });

  it('finds this host by the inventory uuid when there is one (get_this_host names the master after a redirect)', async () => {
    const caller = scripted((method, params): XapiValue => {
      if (method === 'host.get_by_uuid') {
        expect(params).toEqual([uuid(3)]);
        return 'OpaqueRef:member';
      }
      expect(method).toBe('host.get_record');
      expect(params).toEqual(['OpaqueRef:member']);
      return { uuid: uuid(3), hostname: 'member', software_version: {}, other_config: {} };
    });
    expect((await getThisHost(caller, {}, uuid(3))).uuid).toBe(uuid(3));
    expect(caller.calls).not.toContain('session.get_this_host');
  });
});

/** Any code point, with the characters that matter to the filter grammar made frequent. */
const NAME_UNIT = fc.oneof(fc.constantFrom('"', '\\', '=', ' ', '(', 'o', 'r', '\u0000', '\ud800', '\udc00'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));

describe('buildBridgeFilters', () => {
  it('builds one or-expression per chunk of distinct names', () => {
    expect(buildBridgeFilters(['xenbr0', 'xapi1', 'xenbr0', 'br-ex.10'], 2)).toEqual([
      'field "bridge"="xenbr0" or field "bridge"="xapi1"',
      'field "bridge"="br-ex.10"',
    ]);
    expect(buildBridgeFilters([], 2)).toEqual([]);
    expect(() => buildBridgeFilters(['xenbr0'], 0)).toThrow(RangeError);
  });

  it('leaves out names that could end or escape the literal, or match networks without a bridge', () => {
    const hostile = ['', 'a"b', 'x" or true or "', 'back\\slash', 'tab\tname', 'nul\u0000', 'del\u007f', 'lone\ud800'];
    for (const name of hostile) expect(isFilterableBridgeName(name)).toBe(false);
    expect(buildBridgeFilters([...hostile, 'xenbr0'], 10)).toEqual(['field "bridge"="xenbr0"']);
    for (const name of ['xenbr0', 'xapi12', 'br-int', 'ovs_sys:1', 'vlan 5', 'ünï😀', "it's", '(x)=y']) expect(isFilterableBridgeName(name)).toBe(true);
  });

  it('every accepted name is one literal that the filter grammar reads back unchanged', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ unit: NAME_UNIT, maxLength: 8 }), { maxLength: 30 }), fc.integer({ min: 1, max: 7 }), (names, size) => {
        const accepted = names.filter(isFilterableBridgeName);
        const filters = buildBridgeFilters(names, size);
        expect(filters.length).toBe(Math.ceil(accepted.length / size));
        // Parsed as XAPI's lexer would (the simulator's parser has its no-escape literals).
        const seen = filters.flatMap((f) => bridgeLiterals(parseWhere(f)));
        expect(seen.sort()).toEqual([...accepted].sort());
      }),
    );
  });
});

/** The literals of an or-chain of `field "bridge"="…"` terms; anything else fails the test. */
function bridgeLiterals(e: WhereExpr): string[] {
  if (e.kind === 'or') return [...bridgeLiterals(e.left), ...bridgeLiterals(e.right)];
  if (e.kind === 'eq' && e.left.kind === 'field' && e.left.name === 'bridge' && e.right.kind === 'literal') return [e.right.text];
  throw new Error(`unexpected filter term ${JSON.stringify(e)}`);
}

/** A scripted XAPI with networks `{ref: {uuid, bridge, other_config}}` answering get_all_where and the getters. */
function networkXapi(networks: Record<string, { uuid: string; bridge: string; other_config: Record<string, string> }>, hooks: { beforeGetter?: (ref: string) => void } = {}) {
  return scripted((method, params): XapiValue => {
    if (method === 'network.get_all_where') {
      const wanted = new Set([...(params[0] as string).matchAll(/field "bridge"="([^"]*)"/g)].map((m) => m[1]));
      return Object.entries(networks)
        .filter(([, n]) => wanted.has(n.bridge))
        .map(([ref]) => ref);
    }
    const m = /^network\.get_(uuid|bridge|other_config)$/.exec(method);
    if (m === null) throw new Error(`unexpected call ${method}`);
    const ref = params[0] as string;
    hooks.beforeGetter?.(ref);
    const n = networks[ref];
    if (n === undefined) throw new XapiError('HANDLE_INVALID', ['network', ref], method);
    return n[m[1] as 'uuid' | 'bridge' | 'other_config'];
  });
}

describe('lookupNetworksByBridge', () => {
  const N = (i: number): { uuid: string; bridge: string; other_config: Record<string, string> } => ({
    uuid: uuid(i),
    bridge: `xenbr${i}`,
    other_config: i === 1 ? { 'nicira-bridge-id': 'b1' } : {},
  });

  it('asks for refs by bridge name, then reads only uuid, bridge and other_config of each', async () => {
    const caller = networkXapi({ 'OpaqueRef:n0': N(0), 'OpaqueRef:n1': N(1), 'OpaqueRef:n2': N(2) });
    const found = await lookupNetworksByBridge(caller, ['xenbr1', 'xenbr2', 'xenbr9']);
    expect([...found.keys()].sort()).toEqual(['xenbr1', 'xenbr2']);
    expect(found.get('xenbr1')).toEqual({ ref: 'OpaqueRef:n1', uuid: uuid(1), bridge: 'xenbr1', otherConfig: { 'nicira-bridge-id': 'b1' } });
    expect(caller.calls.filter((c) => c === 'network.get_all_where')).toHaveLength(1);
    expect(new Set(caller.calls)).toEqual(new Set(['network.get_all_where', 'network.get_uuid', 'network.get_bridge', 'network.get_other_config']));
    expect(caller.calls).toHaveLength(1 + 2 * 3);
  });

  it('batches names: ceil(n / batch) get_all_where calls; unfilterable names cost nothing', async () => {
    const nets = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`OpaqueRef:n${i}`, N(i)]));
    const caller = networkXapi(nets);
    const found = await lookupNetworksByBridge(caller, [...Array.from({ length: 25 }, (_, i) => `xenbr${i}`), 'bad"name', ''], { batchSize: 10 });
    expect(found.size).toBe(25);
    expect(caller.calls.filter((c) => c === 'network.get_all_where')).toHaveLength(3);

    const none = networkXapi(nets);
    expect((await lookupNetworksByBridge(none, ['bad"name', '', 'x\\y'])).size).toBe(0);
    expect(none.calls).toEqual([]);
  });

  it('a network destroyed between the two calls (HANDLE_INVALID) is not found; the others are', async () => {
    const nets: Record<string, ReturnType<typeof N>> = { 'OpaqueRef:n0': N(0), 'OpaqueRef:n1': N(1) };
    const caller = networkXapi(nets, {
      beforeGetter: (ref) => {
        if (ref === 'OpaqueRef:n1') delete nets['OpaqueRef:n1'];
      },
    });
    const found = await lookupNetworksByBridge(caller, ['xenbr0', 'xenbr1']);
    expect([...found.keys()]).toEqual(['xenbr0']);
  });

  it('any other failure fails the lookup with the typed error', async () => {
    const caller = scripted((method): XapiValue => {
      if (method === 'network.get_all_where') return ['OpaqueRef:n0'];
      if (method === 'network.get_bridge') throw new XapiError('SESSION_INVALID', ['s'], method);
      return method === 'network.get_other_config' ? {} : 'u';
    });
    await expect(lookupNetworksByBridge(caller, ['xenbr0'])).rejects.toMatchObject({ code: 'SESSION_INVALID' });
    const malformed = scripted(() => ({ not: 'an array' }));
    await expect(lookupNetworksByBridge(malformed, ['xenbr0'])).rejects.toMatchObject({ code: 'XAPI_PROTOCOL' });
  });

  it('keeps at most a bounded number of field reads in flight', async () => {
    const refs = Array.from({ length: 40 }, (_, i) => `OpaqueRef:n${i}`);
    let inFlight = 0;
    let peak = 0;
    const caller: XapiCaller = {
      generation: 1,
      callOnSelf: () => Promise.reject(new Error('unused')),
      call: async (method, params) => {
        if (method === 'network.get_all_where') return refs;
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
        const i = refs.indexOf(params[0] as string);
        if (method === 'network.get_uuid') return uuid(i);
        if (method === 'network.get_bridge') return `xenbr${i}`;
        return {};
      },
    };
    const found = await lookupNetworksByBridge(caller, refs.map((_, i) => `xenbr${i}`));
    expect(found.size).toBe(40);
    expect(peak).toBeGreaterThan(3);
    expect(peak).toBeLessThanOrEqual(12);
  });

  const vifRecord = (u: string, vm: string): XapiValue => ({ uuid: u, device: '0', MAC: 'm', VM: vm, network: 'OpaqueRef:n', other_config: {} });

  it('fetches VIFs by ref; one deleted meanwhile (HANDLE_INVALID) is left out, other failures are thrown', async () => {
    const gone = `OpaqueRef:${uuid(2)}`;
    const caller = scripted((method, params) => {
      expect(method).toBe('VIF.get_record');
      if (params[0] === gone) throw new XapiError('HANDLE_INVALID', ['VIF', gone], method);
      return vifRecord(uuid(9), 'OpaqueRef:vm');
    });
    const records = await lookupVifsByRef(caller, [`OpaqueRef:${uuid(1)}`, gone, 'not a ref']);
    expect(records.map((r) => r.ref)).toEqual([`OpaqueRef:${uuid(1)}`]);
    expect(caller.calls).toHaveLength(2);
    const failing = scripted(() => {
      throw new XapiError('SESSION_INVALID', [], 'VIF.get_record');
    });
    await expect(lookupVifsByRef(failing, [`OpaqueRef:${uuid(1)}`])).rejects.toMatchObject({ code: 'SESSION_INVALID' });
  });

  it('fetches the VIFs of VMs by the VM column, only for strings of ref syntax, in batches', async () => {
    const filters: string[] = [];
    const caller = scripted((method, params) => {
      expect(method).toBe('VIF.get_all_records_where');
      filters.push(params[0] as string);
      return {};
    });
    const vms = [uuid(1), uuid(2), uuid(3)].map((u) => `OpaqueRef:${u}`);
    await lookupVifsOfVms(caller, [...vms, 'OpaqueRef:x" or true or "', 'OpaqueRef:NULL'], { batchSize: 2 });
    expect(filters).toEqual([`field "VM"="${vms[0]}" or field "VM"="${vms[1]}"`, `field "VM"="${vms[2]}"`]);
    expect(isRef('OpaqueRef:NULL')).toBe(false);
  });

  it('asks for the VMs scheduled on a host by its internal column; nothing to ask for a malformed ref', async () => {
    const caller = scripted((method, params) => {
      expect(method).toBe('VM.get_all_records_where');
      expect(params).toEqual([`field "scheduled_to_be_resident_on"="OpaqueRef:${uuid(5)}"`]);
      return { [`OpaqueRef:${uuid(6)}`]: { uuid: uuid(6), resident_on: 'OpaqueRef:NULL', domid: '-1', is_control_domain: false, other_config: {} } };
    });
    expect((await lookupVmsScheduledOn(caller, `OpaqueRef:${uuid(5)}`)).map((r) => r.uuid)).toEqual([uuid(6)]);
    expect(await lookupVmsScheduledOn(caller, 'OpaqueRef:"')).toEqual([]);
    expect(caller.calls).toHaveLength(1);
  });
});
