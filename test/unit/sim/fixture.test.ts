import { describe, expect, it } from 'vitest';
import { generateFixture, loadFixture, parseFixture, parseGenerateSpec } from '../../../src/sim/fixture.js';
import { createIdSource } from '../../../src/sim/ids.js';
import { SimState } from '../../../src/sim/state.js';

describe('fixtures', () => {
  it.each([
    [{}, /\$\.hosts: must be an array/],
    [{ hosts: [] }, /needs at least one host/],
    [{ hosts: [{}] }, /\$\.hosts\[0\]\.hostname: is required/],
    [{ hosts: [{ hostname: 'h' }], vms: [{ resident_on: 3, vifs: [] }] }, /\$\.vms\[0\]\.resident_on/],
    [{ hosts: [{ hostname: 'h' }], vms: [{ resident_on: 0, vifs: [{ device: 'eth0', network: 'xenbr0' }] }] }, /device: must be a decimal string/],
    [{ hosts: [{ hostname: 'h' }], networks: [{ bridge: 'b', other_config: { 'a\u0001b': 'x' } }] }, /control character/],
    [{ hosts: [{ hostname: 'h', uuid: 'nope' }] }, /is not a uuid/],
  ])('rejects %j with a precise error', (input, message) => {
    expect(() => parseFixture(input)).toThrow(message);
  });

  it('rejects a VIF on an unknown network when loading', () => {
    const f = parseFixture({ hosts: [{ hostname: 'h' }], vms: [{ resident_on: 0, vifs: [{ device: '0', network: 'xenbr9' }] }] });
    expect(() => loadFixture(new SimState(createIdSource()), f)).toThrow(/xenbr9/);
  });

  it('generates deterministically, round-robin over hosts, with per-host domids', () => {
    const a = new SimState(createIdSource(1));
    const b = new SimState(createIdSource(1));
    loadFixture(a, generateFixture(parseGenerateSpec('5:2:2')));
    loadFixture(b, generateFixture(parseGenerateSpec('5:2:2')));
    expect(a.all('VIF').map((v) => v.uuid)).toStrictEqual(b.all('VIF').map((v) => v.uuid));
    expect(a.count('network')).toBe(2);
    expect(a.count('VIF')).toBe(10);
    const guests = a.all('VM').filter((v) => v.fields.is_control_domain === false);
    expect(guests.map((v) => v.fields.domid)).toStrictEqual([1, 1, 2, 2, 3]);
    expect(() => parseGenerateSpec('5')).toThrow(/VMS:VIFS/);
  });
});
