import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { XapiValue } from '../../../src/xapi/codec/types.js';
import { XapiError } from '../../../src/xapi/errors.js';
import { buildUuidFilters, getNetworks, getThisHost, isRef, isUuid, lookupVifsByRef, lookupVifsByUuid, lookupVifsOfVms, lookupVmsScheduledOn } from '../../../src/xapi/lookups.js';
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

  it('finds this host through get_this_host(session, session) and indexes networks by bridge', async () => {
    const caller = scripted((method, params): XapiValue => {
      if (method === 'session.get_this_host') {
        expect(params).toEqual(['SELF', 'SELF']);
        return 'OpaqueRef:h';
      }
      if (method === 'host.get_record') return { uuid: 'hu', hostname: 'h', software_version: {}, other_config: {} };
      return { N1: { uuid: 'n1', bridge: 'xenbr0', other_config: {} }, N2: { uuid: 'n2', bridge: '', other_config: {} } };
    });
    expect((await getThisHost(caller)).uuid).toBe('hu');
    const nets = await getNetworks(caller);
    expect(nets.byRef.size).toBe(2);
    expect(nets.byBridge.get('xenbr0')?.uuid).toBe('n1');
    expect(nets.byBridge.size).toBe(1);
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
