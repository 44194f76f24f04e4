import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { XapiValue } from '../../../src/xapi/codec/types.js';
import { XapiError } from '../../../src/xapi/errors.js';
import { buildUuidFilters, getNetworks, getThisHost, isUuid, lookupVifsByUuid } from '../../../src/xapi/lookups.js';
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
});
