import { describe, expect, it } from 'vitest';
import type { XapiValue } from '../../../src/xapi/codec/types.js';
import { HostPlacementTracker } from '../../../src/xapi/placement.js';
import { parseHostPlacement, parseVmVifRefs } from '../../../src/xapi/records.js';

const placement = (residentVms: string[], placingTasks: string[] = []): { residentVms: string[]; placingTasks: string[] } => ({ residentVms, placingTasks });

describe('HostPlacementTracker', () => {
  it.each([
    { name: 'a VM becomes resident', before: placement(['a']), after: placement(['a', 'b']), arrived: ['b'], departed: [], ask: false },
    { name: 'a VM leaves', before: placement(['a', 'b']), after: placement(['a']), arrived: [], departed: ['b'], ask: false },
    { name: 'a placement begins', before: placement(['a']), after: placement(['a'], ['T1']), arrived: [], departed: [], ask: true },
    { name: 'one of two placements ends', before: placement([], ['T1', 'T2']), after: placement([], ['T2']), arrived: [], departed: [], ask: true },
    { name: 'the last placement ends', before: placement([], ['T1']), after: placement([]), arrived: [], departed: [], ask: false },
    { name: 'nothing changes', before: placement(['a'], ['T1']), after: placement(['a'], ['T1']), arrived: [], departed: [], ask: false },
  ])('$name', ({ before, after, arrived, departed, ask }) => {
    const t = new HostPlacementTracker();
    t.reset(before);
    expect(t.observe(after)).toEqual({ arrived, departed, askScheduled: ask });
  });

  it('holds scheduled VMs while a placing operation runs, and lets them go when it ends', () => {
    const t = new HostPlacementTracker();
    t.reset(placement(['a']));
    expect(t.observe(placement(['a'], ['T1'])).askScheduled).toBe(true);
    expect(t.setScheduled(['s'])).toEqual([]);
    expect(t.holds('s')).toBe(true);
    // The start completes: resident first (atomic_set_resident_on), then the operation goes.
    expect(t.observe(placement(['a', 's'], ['T1']))).toEqual({ arrived: ['s'], departed: [], askScheduled: false });
    expect(t.observe(placement(['a', 's']))).toEqual({ arrived: [], departed: [], askScheduled: false });
    expect(t.holds('s')).toBe(true);
  });

  it('a failed placement: the scheduled VM departs when its operation ends', () => {
    const t = new HostPlacementTracker();
    t.reset(placement([], ['T1']));
    t.setScheduled(['s']);
    expect(t.observe(placement([])).departed).toEqual(['s']);
    expect(t.holds('s')).toBe(false);
  });

  it('a re-asked answer replaces the scheduled set; an answer arriving after the operations ended is ignored', () => {
    const t = new HostPlacementTracker();
    t.reset(placement([], ['T1', 'T2']));
    t.setScheduled(['s1', 's2']);
    t.observe(placement([], ['T2']));
    expect(t.setScheduled(['s2'])).toEqual(['s1']);
    t.observe(placement([]));
    expect(t.setScheduled(['late'])).toEqual([]);
    expect(t.holds('late')).toBe(false);
  });

  it('reset forgets what was scheduled', () => {
    const t = new HostPlacementTracker();
    t.reset(placement([], ['T1']));
    t.setScheduled(['s']);
    t.reset(placement([], ['T1']));
    expect(t.holds('s')).toBe(false);
  });
});

describe('parseHostPlacement', () => {
  it('reads resident_VMs and the VM-placing operations of current_operations', () => {
    const host = { uuid: 'h', resident_VMs: ['OpaqueRef:a'], current_operations: { 'OpaqueRef:t1': 'vm_start', 'OpaqueRef:t2': 'evacuate', 'OpaqueRef:t3': 'vm_migrate', 'OpaqueRef:t4': 'vm_resume' } };
    expect(parseHostPlacement('H', host)).toEqual({ residentVms: ['OpaqueRef:a'], placingTasks: ['OpaqueRef:t1', 'OpaqueRef:t3', 'OpaqueRef:t4'] });
  });

  it.each<{ name: string; host: XapiValue }>([
    { name: 'fields missing', host: { uuid: 'h' } },
    { name: 'resident_VMs not a set of refs', host: { uuid: 'h', resident_VMs: 'x', current_operations: 7 } },
    { name: 'a resident_VMs member not a string', host: { uuid: 'h', resident_VMs: [1], current_operations: { t: 2 } } },
  ])('reads as nothing placed when $name (the host record itself stays valid)', ({ host }) => {
    expect(parseHostPlacement('H', host)).toEqual({ residentVms: [], placingTasks: [] });
  });

  it('a VM record without VIFs has none', () => {
    expect(parseVmVifRefs('V', { uuid: 'v' })).toEqual([]);
    expect(parseVmVifRefs('V', { uuid: 'v', VIFs: ['OpaqueRef:x'] })).toEqual(['OpaqueRef:x']);
  });
});
