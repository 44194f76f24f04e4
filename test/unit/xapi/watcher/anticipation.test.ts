import { afterEach, describe, expect, it } from 'vitest';
import type { XapiStruct } from '../../../../src/xapi/codec/types.js';
import { XapiError, XapiTransportError } from '../../../../src/xapi/errors.js';
import { harness, vifsOnly, type Harness } from './harness.js';
import { event, ref, token, uuid } from './scripted-xapi.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

/** This host's record as an event snapshot, with `fields` changed. */
function hostEvent(x: Harness['xapi'], fields: XapiStruct): ReturnType<typeof event> {
  const host = { ...x.hosts.get(ref(0xa00))!, ...fields };
  x.hosts.set(ref(0xa00), host);
  return event('host', 'mod', ref(0xa00), host);
}

describe('Anticipation: records of VMs placed here, ahead of their ports', () => {
  it('fetches a VM that became resident here and its VIFs; its port then needs no lookup', async () => {
    h = harness();
    const vif = h.xapi.addVif(0x51, 0x50, 3);
    h.xapi.addVm(0x50, ref(0xa00), [0x51]);
    h.watcher.start();
    await h.untilPolling();
    h.xapi.poll!.answer([hostEvent(h.xapi, { resident_VMs: [ref(0x50)] })], token(120));
    await h.clock.tick();
    expect(h.xapi.count('VM.get_record')).toBe(1);
    expect(h.watcher.cache.vif(vif).state).toBe('known');
    const lookups = h.xapi.count('VIF.get_all_records_where');
    h.watcher.changeInterest(vifsOnly([vif]));
    expect(h.watcher.lookupsOutstanding).toBe(false);
    await h.clock.tick();
    expect(h.xapi.count('VIF.get_all_records_where')).toBe(lookups);
  });

  it('asks which VMs are scheduled here by the public field; a XAPI whose database lacks the column is asked once', async () => {
    h = harness();
    h.watcher.start();
    await h.untilPolling();
    const filters: string[] = [];
    h.xapi.override('VM.get_all_records_where', (params) => {
      const filter = typeof params[0] === 'string' ? params[0] : '';
      filters.push(filter);
      // What xapi answers for a column its database lacks (ocaml/database/db_cache_types.ml:189).
      throw new XapiError('INTERNAL_ERROR', ['missing field', 'scheduled_to_be_resident_on', ''], 'VM.get_all_records_where');
    });
    h.xapi.poll!.answer([hostEvent(h.xapi, { current_operations: { 'OpaqueRef:t1': 'vm_start' } })], token(120));
    await h.clock.tick();
    h.xapi.poll!.answer([hostEvent(h.xapi, { current_operations: { 'OpaqueRef:t1': 'vm_start', 'OpaqueRef:t2': 'vm_start' } })], token(121));
    await h.clock.tick();
    expect(filters).toEqual([`field "scheduled_to_be_resident_on"="${ref(0xa00)}"`]);
    expect(h.logs.some((l) => l.msg.includes('cannot tell which VMs are scheduled'))).toBe(true);
    expect(h.watcher.phase).toBe('live');
  });

  it('skips a placed VM whose record cannot be decoded and still fetches the others', async () => {
    h = harness();
    const good = h.xapi.addVif(0x61, 0x60, 3);
    h.xapi.addVm(0x60, ref(0xa00), [0x61]);
    h.xapi.addVm(0x70, ref(0xa00));
    h.xapi.override('VM.get_record', (params) => {
      if (params[0] === ref(0x70)) throw new XapiTransportError('XAPI_PROTOCOL', 'malformed XML', { method: 'VM.get_record' });
      return h!.xapi.vms.get(params[0] as string)!;
    });
    h.watcher.start();
    await h.untilPolling();
    h.xapi.poll!.answer([hostEvent(h.xapi, { resident_VMs: [ref(0x60), ref(0x70)] })], token(120));
    await h.clock.tick();
    expect(h.watcher.cache.vif(good).state).toBe('known');
    expect(h.watcher.cache.vm(uuid(0x70)).state).toBe('unknown');
    expect(h.watcher.phase).toBe('live');
  });
});
