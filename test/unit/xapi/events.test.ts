import { describe, expect, it } from 'vitest';
import { emptyChange, XapiCache } from '../../../src/xapi/cache.js';
import { applyEvent, parseEventBatch, tokenGeneration, type EventSink } from '../../../src/xapi/events.js';

const vifRecord = { uuid: '00000000-0000-4000-8000-000000000001', device: '0', MAC: 'm', VM: 'OpaqueRef:vm', network: 'OpaqueRef:n', other_config: {} };

function sink(hostRef?: string): EventSink & { vms: string[]; networks: string[] } {
  const vms: string[] = [];
  const networks: string[] = [];
  return {
    hostRef,
    vms,
    networks,
    vmChanged: (ref) => vms.push(ref),
    hostPlacement: () => undefined,
    networkChanged: (bridge) => networks.push(bridge),
  };
}

describe('parseEventBatch', () => {
  it('reads events, lowercases classes, counts malformed entries, and takes counts as numbers or strings', () => {
    const batch = parseEventBatch({
      token: 't',
      events: [{ class: 'VIF', operation: 'mod', ref: 'OpaqueRef:1', snapshot: vifRecord }, 'junk', { class: 'vm', operation: 'del', ref: 'OpaqueRef:2' }],
      // A pool member forwards the master's answer with bare strings (issue 13 §1).
      valid_ref_counts: { VIF: '12', vm: 3, network: 'x' },
    });
    expect(batch?.events.map((e) => [e.cls, e.operation, e.snapshot !== undefined])).toEqual([
      ['vif', 'mod', true],
      ['vm', 'del', false],
    ]);
    expect(batch?.malformed).toBe(1);
    expect([...(batch?.validRefCounts ?? [])]).toEqual([
      ['vif', 12],
      ['vm', 3],
    ]);
    expect(parseEventBatch({ events: [] })).toBeUndefined();
  });
});

describe('tokenGeneration', () => {
  it('reads the generation of xapi\'s tokens and "" as 0', () => {
    expect(tokenGeneration('00000000000000000042,00000000000000000000')).toBe(42n);
    expect(tokenGeneration('')).toBe(0n);
    expect(tokenGeneration('garbage')).toBeUndefined();
  });
});

describe('applyEvent', () => {
  it('updates a followed VIF, keeps its last record marked deleted on del, and ignores objects not followed', () => {
    const cache = new XapiCache();
    const key = vifRecord.uuid;
    cache.vifs.set(key, { state: 'pending' }, new Set());
    cache.vifs.set(key, { state: 'known', record: { ref: 'OpaqueRef:1', uuid: key, device: '0', MAC: 'm', VM: 'OpaqueRef:vm', network: 'OpaqueRef:n', otherConfig: {} }, deleted: false }, new Set());
    const change = emptyChange();
    applyEvent(cache, { cls: 'vif', operation: 'mod', ref: 'OpaqueRef:1', snapshot: { ...vifRecord, other_config: { a: 'b' } } }, change, sink());
    const known = cache.vif(key);
    expect(known.state === 'known' && known.record.otherConfig.a).toBe('b');
    expect([...change.vifs]).toEqual([key]);
    applyEvent(cache, { cls: 'vif', operation: 'del', ref: 'OpaqueRef:1', snapshot: undefined }, change, sink());
    const gone = cache.vif(key);
    expect(gone.state === 'known' && gone.deleted && gone.record.otherConfig.a).toBe('b');
    const other = emptyChange();
    applyEvent(cache, { cls: 'vif', operation: 'mod', ref: 'OpaqueRef:9', snapshot: vifRecord }, other, sink());
    expect(other.vifs.size).toBe(0);
  });

  it('takes the host record only for this host, and passes networks and VMs to the sink', () => {
    const cache = new XapiCache();
    const s = sink('OpaqueRef:me');
    const host = { uuid: 'h', hostname: 'h', software_version: {}, other_config: {} };
    applyEvent(cache, { cls: 'host', operation: 'mod', ref: 'OpaqueRef:master', snapshot: host }, emptyChange(), s);
    expect(cache.host).toBeUndefined();
    applyEvent(cache, { cls: 'host', operation: 'mod', ref: 'OpaqueRef:me', snapshot: host }, emptyChange(), s);
    expect(cache.host?.ref).toBe('OpaqueRef:me');
    applyEvent(cache, { cls: 'vm', operation: 'mod', ref: 'OpaqueRef:v', snapshot: {} }, emptyChange(), s);
    expect(s.vms).toEqual(['OpaqueRef:v']);
    applyEvent(cache, { cls: 'network', operation: 'mod', ref: 'OpaqueRef:n', snapshot: {} }, emptyChange(), s);
    expect(s.networks).toEqual([]); // not followed
  });
});
