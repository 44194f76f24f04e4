import { describe, expect, it } from 'vitest';
import { XapiTransportError } from '../../../src/xapi/errors.js';
import { parseHost, parseNetwork, parsePool, parseRecordMap, parseVif, parseVm, sameRecord } from '../../../src/xapi/records.js';

const vmBase = { uuid: 'u', resident_on: 'OpaqueRef:h', other_config: { 'nicira-vm-id': 'x' } };

describe('records', () => {
  it.each([
    ['XML-RPC strings', { ...vmBase, domid: '7', is_control_domain: false }, 7, false],
    ['JSON-RPC numbers', { ...vmBase, domid: 7, is_control_domain: true }, 7, true],
    ['halted VM', { ...vmBase, domid: '-1', is_control_domain: 'false' }, -1, false],
    ['bool as DB string', { ...vmBase, domid: 0, is_control_domain: 'true' }, 0, true],
  ])('normalises a VM from %s', (_name, value, domid, dom0) => {
    const vm = parseVm('OpaqueRef:vm', value);
    expect(vm).toEqual({ ref: 'OpaqueRef:vm', uuid: 'u', residentOn: 'OpaqueRef:h', domid, isControlDomain: dom0, otherConfig: { 'nicira-vm-id': 'x' } });
  });

  it.each([
    ['missing field', { ...vmBase, is_control_domain: false }, 'domid'],
    ['non-integer domid', { ...vmBase, domid: '7x', is_control_domain: false }, 'domid'],
    ['non-bool', { ...vmBase, domid: 1, is_control_domain: 'yes' }, 'is_control_domain'],
    ['map value not string', { ...vmBase, domid: 1, is_control_domain: true, other_config: { a: 1 } }, 'other_config'],
  ])('rejects %s with XAPI_PROTOCOL naming the field', (_name, value, field) => {
    let caught: unknown;
    try {
      parseVm('OpaqueRef:vm', value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(XapiTransportError);
    expect((caught as XapiTransportError).code).toBe('XAPI_PROTOCOL');
    expect((caught as Error).message).toContain(field);
  });

  it('parses VIF, network, pool and host records', () => {
    expect(parseVif('R', { uuid: 'v', device: '0', MAC: 'aa', VM: 'OpaqueRef:vm', network: 'OpaqueRef:n', other_config: {}, MTU: '1500' })).toEqual({
      ref: 'R', uuid: 'v', device: '0', MAC: 'aa', VM: 'OpaqueRef:vm', network: 'OpaqueRef:n', otherConfig: {},
    });
    expect(parseNetwork('N', { uuid: 'n', bridge: 'xenbr0', other_config: { 'nicira-bridge-id': 'b' } }).bridge).toBe('xenbr0');
    expect(parsePool('P', { uuid: 'p', master: 'OpaqueRef:h', other_config: {} }).master).toBe('OpaqueRef:h');
    expect(parseHost('H', { uuid: 'h', hostname: 'x', software_version: { product_brand: 'XCP-ng' }, other_config: {} }).softwareVersion).toEqual({ product_brand: 'XCP-ng' });
    expect(() => parseVif('R', 'not a struct')).toThrow(/not a struct/);
  });

  it('parses a ref → record map and compares records structurally', () => {
    const list = parseRecordMap('network', { A: { uuid: 'a', bridge: 'b', other_config: {} }, B: { uuid: 'b', bridge: '', other_config: { k: 'v' } } }, parseNetwork);
    expect(list.map((n) => n.ref)).toEqual(['A', 'B']);
    expect(() => parseRecordMap('network', [], parseNetwork)).toThrow(XapiTransportError);
    const a = parseNetwork('A', { uuid: 'a', bridge: 'b', other_config: { k: 'v' } });
    expect(sameRecord(a, parseNetwork('A', { uuid: 'a', bridge: 'b', other_config: { k: 'v' } }))).toBe(true);
    expect(sameRecord(a, parseNetwork('A', { uuid: 'a', bridge: 'b', other_config: { k: 'w' } }))).toBe(false);
  });
});
