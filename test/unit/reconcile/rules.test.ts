import { describe, expect, it } from 'vitest';
import { reconcileAll } from '../../../src/reconcile/row-selection.js';
import { interfaceRole } from '../../../src/reconcile/rules.js';
import type { OvsdbView, SystemFacts, XapiHost, XapiObjectState, XapiPool } from '../../../src/reconcile/views.js';
import {
  ABSENT,
  applyChangeSet,
  bridge,
  changeFor,
  FakeXapi,
  iface,
  known,
  managingAllBut,
  map,
  NO_FACTS,
  ovsView,
  PENDING,
  root,
  ROOT_UUID,
  UNKNOWN,
} from './fixtures.js';

const HOST = '11111111-1111-4111-8111-111111111111';
const INV = '22222222-2222-4222-8222-222222222222';
const NET = 'aaaaaaaa-0000-4000-8000-000000000001';
const NET2 = 'aaaaaaaa-0000-4000-8000-000000000002';
const VIF = 'bbbbbbbb-0000-4000-8000-000000000001';
const VIF2 = 'bbbbbbbb-0000-4000-8000-000000000002';
const VM = 'cccccccc-0000-4000-8000-000000000001';
const MAC = '00:16:3e:00:00:01';
const BR = 'br-0001';
const IF = 'if-0001';
const TAP = 'if-0002';

const inventory: SystemFacts = {
  inventory: { installationUuid: INV, productBrand: 'XCP-ng', productVersion: '8.3.0', buildNumber: 'release/yangtze' },
  enableStatistics: false,
};

function hostState(sv: Record<string, string> = {}, uuid = HOST): XapiObjectState<XapiHost> {
  return known({ uuid, softwareVersion: map(sv) });
}

function poolState(other: Record<string, string>): XapiObjectState<XapiPool> {
  return known({ otherConfig: map(other) });
}

/** Reconciles, checks the result converges in one step (idempotence), and returns it. */
function run(ovs: OvsdbView, xapi: FakeXapi, facts: SystemFacts = NO_FACTS) {
  const result = reconcileAll(ovs, xapi, facts);
  const again = reconcileAll(applyChangeSet(ovs, result.changes), xapi, facts);
  expect(again.changes).toEqual([]);
  return result;
}

describe('Open_vSwitch row', () => {
  const sv = { product_brand: 'XenServer', product_version: '8.4.0', build_number: '123' };
  const cases: {
    name: string;
    row: ReturnType<typeof root>;
    host: XapiObjectState<XapiHost>;
    facts?: SystemFacts;
    expect: Record<string, string | null>;
    warnings?: string[];
    pending?: boolean;
    unknown?: boolean;
  }[] = [
    {
      // On a pool member reached over http the host XAPI names is the master (docs/xapi.md §8): the
      // inventory's INSTALLATION_UUID is this host whenever there is one.
      name: 'host known: ids from the inventory, type and version from XAPI',
      row: root(),
      host: hostState(sv),
      facts: inventory,
      expect: {
        'external_ids:system-id': INV,
        'external_ids:xs-system-uuid': INV,
        system_type: 'XenServer',
        system_version: '8.4.0-123',
      },
    },
    {
      name: 'host known without product fields (XCP drops empty ones): inventory fills them',
      row: root(),
      host: hostState({}),
      facts: inventory,
      expect: {
        'external_ids:system-id': INV,
        'external_ids:xs-system-uuid': INV,
        system_type: 'XCP-ng',
        system_version: '8.3.0-release/yangtze',
      },
    },
    {
      name: 'host absent: inventory',
      row: root({ 'system-id': HOST }),
      host: ABSENT,
      facts: inventory,
      expect: {
        'external_ids:system-id': INV,
        'external_ids:xs-system-uuid': INV,
        system_type: 'XCP-ng',
        system_version: '8.3.0-release/yangtze',
      },
    },
    {
      name: 'config systemId overrides XAPI and inventory',
      row: root(),
      host: hostState(sv),
      facts: { ...inventory, systemId: 'my-system' },
      expect: {
        'external_ids:system-id': 'my-system',
        'external_ids:xs-system-uuid': 'my-system',
        system_type: 'XenServer',
        system_version: '8.4.0-123',
      },
    },
    {
      name: 'invalid config systemId: warning, XAPI host used',
      row: root(),
      host: hostState({}),
      facts: { inventory: {}, enableStatistics: false, systemId: 'bad\nid' },
      expect: { 'external_ids:system-id': HOST, 'external_ids:xs-system-uuid': HOST },
      warnings: ['SYSTEM_FACT_INVALID'],
    },
    {
      name: 'no inventory: ids from the XAPI host',
      row: root(),
      host: hostState(sv),
      facts: { inventory: {}, enableStatistics: false },
      expect: { 'external_ids:system-id': HOST, 'external_ids:xs-system-uuid': HOST, system_type: 'XenServer', system_version: '8.4.0-123' },
    },
    {
      name: 'invalid inventory INSTALLATION_UUID: warning, XAPI host used',
      row: root(),
      host: hostState({}),
      facts: { inventory: { installationUuid: 'x'.repeat(300) }, enableStatistics: false },
      expect: { 'external_ids:system-id': HOST, 'external_ids:xs-system-uuid': HOST },
      warnings: ['SYSTEM_FACT_INVALID'],
    },
    {
      name: 'invalid XAPI host uuid and no inventory: warning, nothing written',
      row: root(),
      host: hostState({}, 'x'.repeat(300)),
      facts: { inventory: {}, enableStatistics: false },
      expect: {},
      warnings: ['SYSTEM_FACT_INVALID'],
    },
    {
      name: 'host pending: everything left alone',
      row: root({ 'system-id': 'old' }),
      host: PENDING,
      facts: inventory,
      expect: {},
      pending: true,
    },
    {
      name: 'host unknown: existing values kept, missing ones from the inventory',
      row: root({ 'system-id': 'old' }, {}, 'Old Brand'),
      host: UNKNOWN,
      facts: inventory,
      expect: { 'external_ids:xs-system-uuid': INV, system_version: '8.3.0-release/yangtze' },
      unknown: true,
    },
    {
      name: 'no source at all: nothing touched, nothing emptied',
      row: root({ 'system-id': 'keep' }, {}, 'T', 'V'),
      host: ABSENT,
      expect: {},
    },
    {
      name: 'enableStatistics true sets enable-statistics=true',
      row: root({ 'system-id': INV, 'xs-system-uuid': INV }, { 'enable-statistics': 'false' }),
      host: ABSENT,
      facts: { inventory: { installationUuid: INV }, enableStatistics: true },
      expect: { 'other_config:enable-statistics': 'true' },
    },
    {
      name: 'enableStatistics false leaves enable-statistics alone',
      row: root({ 'system-id': INV, 'xs-system-uuid': INV }, { 'enable-statistics': 'false' }),
      host: ABSENT,
      facts: { inventory: { installationUuid: INV }, enableStatistics: false },
      expect: {},
    },
    {
      name: 'system-id not managed: left as found, xs-system-uuid still written',
      row: root({ 'system-id': 'ovn-chassis' }),
      host: hostState(sv),
      facts: managingAllBut(['system-id'], { ...inventory, systemId: 'my-system' }),
      expect: { 'external_ids:xs-system-uuid': 'my-system', system_type: 'XenServer', system_version: '8.4.0-123' },
    },
    {
      name: 'system_type and system_version not managed: columns left as found',
      row: root({}, {}, 'Other', 'old'),
      host: hostState(sv),
      facts: managingAllBut(['system_type', 'system_version'], inventory),
      expect: { 'external_ids:system-id': INV, 'external_ids:xs-system-uuid': INV },
    },
    {
      name: 'no host-derived field managed: the host is not consulted, so it cannot make the row pending',
      row: root({ 'system-id': 'x' }),
      host: PENDING,
      facts: managingAllBut(['system-id', 'xs-system-uuid', 'system_type', 'system_version'], { ...inventory, enableStatistics: true }),
      expect: { 'other_config:enable-statistics': 'true' },
    },
    {
      name: 'enable-statistics not managed: enableStatistics true leaves it alone',
      row: root({ 'system-id': INV, 'xs-system-uuid': INV }, { 'enable-statistics': 'false' }),
      host: ABSENT,
      facts: managingAllBut(['enable-statistics'], { inventory: { installationUuid: INV }, enableStatistics: true }),
      expect: {},
    },
    {
      name: 'invalid systemId with neither id key managed: no warning',
      row: root(),
      host: ABSENT,
      facts: managingAllBut(['system-id', 'xs-system-uuid'], { inventory: {}, enableStatistics: false, systemId: 'bad\nid' }),
      expect: {},
    },
    {
      name: 'converged row: no change; foreign keys untouched',
      row: root({ 'system-id': HOST, 'xs-system-uuid': HOST, foreign: 'x' }, {}, 'XenServer', '8.4.0-123'),
      host: hostState(sv),
      expect: {},
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const xapi = new FakeXapi();
      xapi.hostState = c.host;
      const result = run(ovsView({ root: c.row }), xapi, c.facts ?? NO_FACTS);
      expect(changeFor(result, ROOT_UUID)).toEqual(c.expect);
      expect(result.warnings.map((w) => w.code)).toEqual(c.warnings ?? []);
      expect(result.pending.map((p) => p.dependency.kind)).toEqual(c.pending === true ? ['host'] : []);
      expect(result.unknown.map((p) => p.dependency.kind)).toEqual(c.unknown === true ? ['host'] : []);
    });
  }

  it('an empty database (no root row) yields nothing', () => {
    const xapi = new FakeXapi();
    xapi.hostState = hostState({});
    expect(reconcileAll(ovsView({}), xapi, inventory)).toEqual({ changes: [], warnings: [], pending: [], unknown: [] });
  });
});

describe('Bridge rows', () => {
  type Case = {
    name: string;
    row: ReturnType<typeof bridge>;
    setup: (x: FakeXapi) => void;
    facts?: SystemFacts;
    expect: Record<string, string | null>;
    warnings?: string[];
    pending?: string[];
    unknown?: string[];
  };
  const cases: Case[] = [
    {
      name: 'bridge-id from nicira-bridge-id',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET }),
      setup: (x) => x.network('xenbr0', NET, { 'nicira-bridge-id': 'custom-bridge' }),
      expect: { 'external_ids:bridge-id': 'custom-bridge', fail_mode: 'standalone' },
    },
    {
      name: 'bridge-id from a single xs-network-uuids',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET }, {}, 'standalone'),
      setup: (x) => x.network('xenbr0', NET),
      expect: { 'external_ids:bridge-id': NET },
    },
    {
      name: 'several xs-network-uuids: the one equal to the network uuid',
      row: bridge(BR, 'xapi1', { 'xs-network-uuids': `${NET2};${NET}` }, {}, 'standalone'),
      setup: (x) => x.network('xapi1', NET),
      expect: { 'external_ids:bridge-id': NET },
    },
    {
      name: 'several xs-network-uuids, network not among them: warning, bridge-id removed',
      row: bridge(BR, 'xapi1', { 'xs-network-uuids': `${NET2};${VIF}`, 'bridge-id': NET2 }, {}, 'standalone'),
      setup: (x) => x.network('xapi1', NET),
      expect: { 'external_ids:bridge-id': null },
      warnings: ['BRIDGE_ID_AMBIGUOUS'],
    },
    {
      name: 'several xs-network-uuids and no XAPI network: warning, bridge-id removed',
      row: bridge(BR, 'xapi1', { 'xs-network-uuids': `${NET2};${NET}`, 'bridge-id': NET2 }),
      setup: () => undefined,
      expect: { 'external_ids:bridge-id': null },
      warnings: ['BRIDGE_ID_AMBIGUOUS'],
    },
    {
      name: 'no xs-network-uuids: bridge-id removed',
      row: bridge(BR, 'xenbr0', { 'bridge-id': 'stale', other: 'kept' }, {}, 'secure'),
      setup: () => undefined,
      expect: { 'external_ids:bridge-id': null },
    },
    {
      name: 'bridge XAPI does not know keeps fail_mode and other_config',
      row: bridge(BR, 'ovsbr', { 'xs-network-uuids': NET }, { 'disable-in-band': 'true' }, 'secure'),
      setup: () => undefined,
      expect: { 'external_ids:bridge-id': NET },
    },
    {
      name: 'fail_mode from the network',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }),
      setup: (x) => {
        x.network('xenbr0', NET, { 'vswitch-controller-fail-mode': 'secure' });
        x.poolState = poolState({ 'vswitch-controller-fail-mode': 'standalone' });
      },
      expect: { fail_mode: 'secure' },
    },
    {
      name: 'fail_mode from the pool when the network lacks it',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, {}, 'standalone'),
      setup: (x) => {
        x.network('xenbr0', NET);
        x.poolState = poolState({ 'vswitch-controller-fail-mode': 'secure' });
      },
      expect: { fail_mode: 'secure' },
    },
    {
      name: 'fail_mode standalone when neither says',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, {}, 'secure'),
      setup: (x) => x.network('xenbr0', NET),
      expect: { fail_mode: 'standalone' },
    },
    {
      name: 'fail_mode standalone when there is not exactly one pool',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, {}, 'secure'),
      setup: (x) => {
        x.network('xenbr0', NET);
        x.poolState = ABSENT;
      },
      expect: { fail_mode: 'standalone' },
    },
    {
      name: 'invalid network fail-mode: warning, standalone',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, {}, 'secure'),
      setup: (x) => x.network('xenbr0', NET, { 'vswitch-controller-fail-mode': 'open' }),
      expect: { fail_mode: 'standalone' },
      warnings: ['FAIL_MODE_INVALID'],
    },
    {
      name: 'invalid pool fail-mode: warning, standalone',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, {}, 'secure'),
      setup: (x) => {
        x.network('xenbr0', NET);
        x.poolState = poolState({ 'vswitch-controller-fail-mode': 'Secure' });
      },
      expect: { fail_mode: 'standalone' },
      warnings: ['FAIL_MODE_INVALID'],
    },
    {
      name: 'disable-in-band true',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, { foreign: '1' }, 'standalone'),
      setup: (x) => x.network('xenbr0', NET, { 'vswitch-disable-in-band': 'true' }),
      expect: { 'other_config:disable-in-band': 'true' },
    },
    {
      name: 'disable-in-band false replaces true',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, { 'disable-in-band': 'true' }, 'standalone'),
      setup: (x) => x.network('xenbr0', NET, { 'vswitch-disable-in-band': 'false' }),
      expect: { 'other_config:disable-in-band': 'false' },
    },
    {
      name: 'disable-in-band removed when the network has no value',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, { 'disable-in-band': 'true' }, 'standalone'),
      setup: (x) => x.network('xenbr0', NET),
      expect: { 'other_config:disable-in-band': null },
    },
    {
      name: 'invalid disable-in-band: warning, left as is',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, { 'disable-in-band': 'true' }, 'standalone'),
      setup: (x) => x.network('xenbr0', NET, { 'vswitch-disable-in-band': 'yes' }),
      expect: {},
      warnings: ['DISABLE_IN_BAND_INVALID'],
    },
    {
      name: 'invalid nicira-bridge-id: warning, default used',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET }, {}, 'standalone'),
      setup: (x) => x.network('xenbr0', NET, { 'nicira-bridge-id': 'evil\u202eid' }),
      expect: { 'external_ids:bridge-id': NET },
      warnings: ['OVERRIDE_INVALID'],
    },
    {
      name: 'network pending: bridge-id, fail_mode and disable-in-band left alone',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET }, { 'disable-in-band': 'x' }),
      setup: (x) => x.networks.set('xenbr0', PENDING),
      expect: {},
      pending: ['network:xenbr0'],
    },
    {
      name: 'network unknown: existing bridge-id kept, fail_mode and other_config untouched',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': 'custom' }, { 'disable-in-band': 'true' }),
      setup: (x) => x.networks.set('xenbr0', UNKNOWN),
      expect: {},
      unknown: ['network:xenbr0'],
    },
    {
      name: 'network unknown: missing bridge-id gets the default',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET }),
      setup: (x) => x.networks.set('xenbr0', UNKNOWN),
      expect: { 'external_ids:bridge-id': NET },
      unknown: ['network:xenbr0'],
    },
    {
      name: 'network unknown with several xs-network-uuids: a missing bridge-id stays missing, no warning',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': `${NET};${NET2}` }),
      setup: (x) => x.networks.set('xenbr0', UNKNOWN),
      expect: {},
      unknown: ['network:xenbr0'],
    },
    {
      name: 'pool pending while the network lacks fail-mode: fail_mode left alone, rest applied',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET }, {}, 'secure'),
      setup: (x) => {
        x.network('xenbr0', NET, { 'vswitch-disable-in-band': 'true' });
        x.poolState = PENDING;
      },
      expect: { 'external_ids:bridge-id': NET, 'other_config:disable-in-band': 'true' },
      pending: ['pool'],
    },
    {
      name: 'pool pending does not matter when the network has fail-mode',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, {}, 'standalone'),
      setup: (x) => {
        x.network('xenbr0', NET, { 'vswitch-controller-fail-mode': 'secure' });
        x.poolState = PENDING;
      },
      expect: { fail_mode: 'secure' },
    },
    {
      name: 'pool unknown: existing fail_mode kept',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, {}, 'secure'),
      setup: (x) => {
        x.network('xenbr0', NET);
        x.poolState = UNKNOWN;
      },
      expect: {},
      unknown: ['pool'],
    },
    {
      name: 'pool unknown: empty fail_mode becomes standalone',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }),
      setup: (x) => {
        x.network('xenbr0', NET);
        x.poolState = UNKNOWN;
      },
      expect: { fail_mode: 'standalone' },
      unknown: ['pool'],
    },
    {
      name: 'fail_mode not managed: left as found, the pool not consulted',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET }, {}, 'secure'),
      setup: (x) => {
        x.network('xenbr0', NET, { 'vswitch-disable-in-band': 'true' });
        x.poolState = PENDING;
      },
      facts: managingAllBut(['fail_mode']),
      expect: { 'external_ids:bridge-id': NET, 'other_config:disable-in-band': 'true' },
    },
    {
      name: 'bridge-id not managed: a foreign bridge-id survives, no ambiguity warning',
      row: bridge(BR, 'xapi1', { 'xs-network-uuids': `${NET2};${VIF}`, 'bridge-id': 'theirs' }, {}, 'standalone'),
      setup: (x) => x.network('xapi1', NET, { 'nicira-bridge-id': 'bad\u0000' }),
      facts: managingAllBut(['bridge-id']),
      expect: {},
    },
    {
      name: 'disable-in-band not managed: left as found, no warning for a bad value',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET, 'bridge-id': NET }, { 'disable-in-band': 'true' }, 'standalone'),
      setup: (x) => x.network('xenbr0', NET, { 'vswitch-disable-in-band': 'yes' }),
      facts: managingAllBut(['disable-in-band']),
      expect: {},
    },
    {
      name: 'no bridge field managed: the network is not consulted, so it cannot make the row pending',
      row: bridge(BR, 'xenbr0', { 'xs-network-uuids': NET }),
      setup: (x) => x.networks.set('xenbr0', PENDING),
      facts: managingAllBut(['bridge-id', 'fail_mode', 'disable-in-band']),
      expect: {},
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const xapi = new FakeXapi();
      c.setup(xapi);
      const result = run(ovsView({ bridges: [c.row] }), xapi, c.facts);
      expect(changeFor(result, BR)).toEqual(c.expect);
      expect(result.warnings.map((w) => w.code)).toEqual(c.warnings ?? []);
      const dep = (u: (typeof result.pending)[number]) =>
        u.dependency.kind === 'network' ? `network:${u.dependency.bridge}` : u.dependency.kind;
      expect(result.pending.map(dep)).toEqual(c.pending ?? []);
      expect(result.unknown.map(dep)).toEqual(c.unknown ?? []);
    });
  }

  it('warning messages are one safe line and name the row', () => {
    const xapi = new FakeXapi().network('xenbr0', NET, { 'vswitch-disable-in-band': 'a\nb"\u0000' + 'z'.repeat(500) });
    const result = reconcileAll(ovsView({ bridges: [bridge(BR, 'xenbr0')] }), xapi, NO_FACTS);
    const [w] = result.warnings;
    expect(w).toMatchObject({ code: 'DISABLE_IN_BAND_INVALID', table: 'Bridge', uuid: BR, name: 'xenbr0' });
    expect(w!.message).not.toMatch(/\p{Cc}/u);
    expect(w!.message.length).toBeLessThan(300);
    expect(w!.message).toContain('\\u{a}');
  });
});

describe('Interface rows', () => {
  const vifFacts = { 'attached-mac': MAC, 'xs-network-uuid': NET, 'xs-vif-uuid': VIF, 'xs-vm-uuid': VM };

  it('pairing by name: vifD.N <-> tapD.N only', () => {
    expect(interfaceRole('vif12.3')).toEqual({ role: 'vif', partner: 'tap12.3' });
    expect(interfaceRole('tap1.0')).toEqual({ role: 'tap', partner: 'vif1.0' });
    for (const name of ['eth0', 'vif1', 'tap1.0x', 'vif1.0-emu', 'xvif1.0', 'vifa.b']) {
      expect(interfaceRole(name).role).toBe('other');
    }
  });

  type Case = {
    name: string;
    rows: ReturnType<typeof iface>[];
    setup?: (x: FakeXapi) => void;
    facts?: SystemFacts;
    expect: Record<string, Record<string, string | null>>;
    warnings?: string[];
    pending?: string[];
    unknown?: string[];
  };
  const cases: Case[] = [
    {
      name: 'vif alone: ids are the uuids, status active',
      rows: [iface(IF, 'vif1.0', vifFacts)],
      expect: {
        [IF]: { 'external_ids:iface-id': VIF, 'external_ids:vm-id': VM, 'external_ids:iface-status': 'active' },
      },
    },
    {
      name: 'vif with overrides (nicira-iface-id is also neutron-port-uuid)',
      rows: [iface(IF, 'vif1.0', vifFacts)],
      setup: (x) => x.vifRec(VIF, { 'nicira-iface-id': 'custom-iface' }).vmRec(VM, { 'nicira-vm-id': 'custom-vm' }),
      expect: {
        [IF]: {
          'external_ids:iface-id': 'custom-iface',
          'external_ids:vm-id': 'custom-vm',
          'external_ids:iface-status': 'active',
          'external_ids:neutron-port-uuid': 'custom-iface',
        },
      },
    },
    {
      name: 'pair: tap copies the four keys and is active, vif inactive; neutron-port-uuid on the vif only',
      rows: [iface(IF, 'vif1.0', vifFacts), iface(TAP, 'tap1.0', { foreign: 'kept' })],
      setup: (x) => x.vifRec(VIF, { 'nicira-iface-id': 'custom-iface' }),
      expect: {
        [IF]: {
          'external_ids:iface-id': 'custom-iface',
          'external_ids:vm-id': VM,
          'external_ids:iface-status': 'inactive',
          'external_ids:neutron-port-uuid': 'custom-iface',
        },
        [TAP]: {
          'external_ids:attached-mac': MAC,
          'external_ids:xs-network-uuid': NET,
          'external_ids:xs-vif-uuid': VIF,
          'external_ids:xs-vm-uuid': VM,
          'external_ids:iface-id': 'custom-iface',
          'external_ids:vm-id': VM,
          'external_ids:iface-status': 'active',
        },
      },
    },
    {
      name: 'a key the vif lacks is removed from the tap',
      rows: [
        iface(IF, 'vif1.0', { 'xs-vif-uuid': VIF, 'iface-id': VIF, 'iface-status': 'inactive' }),
        iface(TAP, 'tap1.0', { ...vifFacts, 'iface-id': VIF, 'vm-id': VM, 'iface-status': 'active' }),
      ],
      expect: {
        [TAP]: {
          'external_ids:attached-mac': null,
          'external_ids:xs-network-uuid': null,
          'external_ids:xs-vm-uuid': null,
          'external_ids:vm-id': null,
        },
      },
    },
    {
      name: 'tap alone: copied keys untouched, ids from its own facts, status removed',
      rows: [iface(TAP, 'tap1.0', { ...vifFacts, 'iface-status': 'active' })],
      setup: (x) => x.vifRec(VIF, { 'nicira-iface-id': 'custom-iface' }),
      expect: {
        [TAP]: { 'external_ids:iface-id': 'custom-iface', 'external_ids:vm-id': VM, 'external_ids:iface-status': null },
      },
    },
    {
      name: 'other rows: the uuid itself even when XAPI has an override, no status',
      rows: [iface(IF, 'eth0', { ...vifFacts, 'iface-status': 'active' })],
      setup: (x) => x.vifRec(VIF, { 'nicira-iface-id': 'custom-iface' }).vmRec(VM, { 'nicira-vm-id': 'custom-vm' }),
      expect: { [IF]: { 'external_ids:iface-id': VIF, 'external_ids:vm-id': VM, 'external_ids:iface-status': null } },
    },
    {
      name: 'no xs-vif-uuid / xs-vm-uuid: ids removed',
      rows: [iface(IF, 'vif2.0', { 'iface-id': 'x', 'vm-id': 'y', 'iface-status': 'active', foreign: 'kept' })],
      expect: { [IF]: { 'external_ids:iface-id': null, 'external_ids:vm-id': null } },
    },
    {
      name: 'VIF absent (UUID_INVALID): the uuid',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': 'old-override' })],
      setup: (x) => x.vifs.set(VIF, ABSENT),
      expect: { [IF]: { 'external_ids:iface-id': VIF, 'external_ids:vm-id': VM, 'external_ids:iface-status': 'active' } },
    },
    {
      name: 'VIF pending: iface-id left alone, vm-id and status applied',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': 'old' })],
      setup: (x) => x.vifs.set(VIF, PENDING),
      expect: { [IF]: { 'external_ids:vm-id': VM, 'external_ids:iface-status': 'active' } },
      pending: [`vif:${VIF}`],
    },
    {
      name: 'VM pending: vm-id left alone',
      rows: [iface(IF, 'vif1.0', { ...vifFacts })],
      setup: (x) => x.vms.set(VM, PENDING),
      expect: { [IF]: { 'external_ids:iface-id': VIF, 'external_ids:iface-status': 'active' } },
      pending: [`vm:${VM}`],
    },
    {
      name: 'VIF and VM unknown: existing values kept',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': 'custom-iface', 'vm-id': 'custom-vm', 'iface-status': 'active' })],
      setup: (x) => {
        x.fallback = UNKNOWN;
      },
      expect: {},
      unknown: [`vif:${VIF}`, `vm:${VM}`],
    },
    {
      name: 'VIF and VM unknown: missing values get the uuid',
      rows: [iface(IF, 'vif1.0', vifFacts)],
      setup: (x) => {
        x.fallback = UNKNOWN;
      },
      expect: { [IF]: { 'external_ids:iface-id': VIF, 'external_ids:vm-id': VM, 'external_ids:iface-status': 'active' } },
      unknown: [`vif:${VIF}`, `vm:${VM}`],
    },
    {
      name: 'VIF pending on a pair: both rows left alone for iface-id, one entry per row',
      rows: [iface(IF, 'vif1.0', vifFacts), iface(TAP, 'tap1.0', vifFacts)],
      setup: (x) => x.vifs.set(VIF, PENDING),
      expect: {
        [IF]: { 'external_ids:vm-id': VM, 'external_ids:iface-status': 'inactive' },
        [TAP]: { 'external_ids:vm-id': VM, 'external_ids:iface-status': 'active' },
      },
      pending: [`vif:${VIF}`, `vif:${VIF}`],
    },
    {
      name: 'invalid nicira-iface-id / nicira-vm-id: one warning each (iface-id and neutron-port-uuid share one), uuids used',
      rows: [iface(IF, 'vif1.0', vifFacts)],
      setup: (x) => x.vifRec(VIF, { 'nicira-iface-id': 'a'.repeat(256) }).vmRec(VM, { 'nicira-vm-id': 'bad\u0007' }),
      expect: { [IF]: { 'external_ids:iface-id': VIF, 'external_ids:vm-id': VM, 'external_ids:iface-status': 'active' } },
      warnings: ['OVERRIDE_INVALID', 'OVERRIDE_INVALID'],
    },
    {
      name: 'empty override counts as absent',
      rows: [iface(IF, 'vif1.0', vifFacts)],
      setup: (x) => x.vifRec(VIF, { 'nicira-iface-id': '' }),
      expect: { [IF]: { 'external_ids:iface-id': VIF, 'external_ids:vm-id': VM, 'external_ids:iface-status': 'active' } },
    },
    {
      name: 'tap ids follow the vif after the copy (stale tap facts replaced)',
      rows: [iface(IF, 'vif3.1', vifFacts), iface(TAP, 'tap3.1', { 'xs-vif-uuid': VIF2, 'iface-id': VIF2 })],
      expect: {
        [IF]: { 'external_ids:iface-id': VIF, 'external_ids:vm-id': VM, 'external_ids:iface-status': 'inactive' },
        [TAP]: {
          'external_ids:attached-mac': MAC,
          'external_ids:xs-network-uuid': NET,
          'external_ids:xs-vif-uuid': VIF,
          'external_ids:xs-vm-uuid': VM,
          'external_ids:iface-id': VIF,
          'external_ids:vm-id': VM,
          'external_ids:iface-status': 'active',
        },
      },
    },
    // neutron-port-uuid (issue 13 §5): vif rows only, the same outcomes as iface-id with "no key" as the default.
    {
      name: 'neutron-port-uuid from the VIF neutron-port-uuid, before nicira-iface-id',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-status': 'active', 'vm-id': VM })],
      setup: (x) => x.vifRec(VIF, { 'neutron-port-uuid': 'port-1', 'nicira-iface-id': 'custom-iface' }),
      expect: { [IF]: { 'external_ids:iface-id': 'custom-iface', 'external_ids:neutron-port-uuid': 'port-1' } },
    },
    {
      name: 'neutron-port-uuid removed when the VIF has neither key',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': VIF, 'vm-id': VM, 'iface-status': 'active', 'neutron-port-uuid': 'stale' })],
      setup: (x) => x.vifRec(VIF, { 'neutron-port-uuid': '' }),
      expect: { [IF]: { 'external_ids:neutron-port-uuid': null } },
    },
    {
      name: 'neutron-port-uuid removed when the VIF is absent',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': VIF, 'vm-id': VM, 'iface-status': 'active', 'neutron-port-uuid': 'stale' })],
      setup: (x) => x.vifs.set(VIF, ABSENT),
      expect: { [IF]: { 'external_ids:neutron-port-uuid': null } },
    },
    {
      name: 'neutron-port-uuid removed when the row has no xs-vif-uuid',
      rows: [iface(IF, 'vif1.0', { 'iface-status': 'active', 'neutron-port-uuid': 'stale' })],
      expect: { [IF]: { 'external_ids:neutron-port-uuid': null } },
    },
    {
      name: 'VIF pending: neutron-port-uuid left alone with iface-id, the row pending once',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'vm-id': VM, 'iface-status': 'active', 'neutron-port-uuid': 'old' })],
      setup: (x) => x.vifs.set(VIF, PENDING),
      expect: {},
      pending: [`vif:${VIF}`],
    },
    {
      name: 'VIF unknown: an existing neutron-port-uuid is kept',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': VIF, 'vm-id': VM, 'iface-status': 'active', 'neutron-port-uuid': 'port-1' })],
      setup: (x) => {
        x.fallback = UNKNOWN;
      },
      expect: {},
      unknown: [`vif:${VIF}`, `vm:${VM}`],
    },
    {
      name: 'VIF unknown: a missing neutron-port-uuid stays missing (its default is no key)',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': VIF, 'vm-id': VM, 'iface-status': 'active' })],
      setup: (x) => {
        x.fallback = UNKNOWN;
      },
      expect: {},
      unknown: [`vif:${VIF}`, `vm:${VM}`],
    },
    {
      name: 'invalid neutron-port-uuid: warning, nicira-iface-id used',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': 'custom-iface', 'vm-id': VM, 'iface-status': 'active' })],
      setup: (x) => x.vifRec(VIF, { 'neutron-port-uuid': 'bad\u202eport', 'nicira-iface-id': 'custom-iface' }),
      expect: { [IF]: { 'external_ids:neutron-port-uuid': 'custom-iface' } },
      warnings: ['OVERRIDE_INVALID'],
    },
    {
      name: 'tap and other rows: neutron-port-uuid never touched',
      rows: [
        iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': VIF, 'vm-id': VM, 'iface-status': 'inactive', 'neutron-port-uuid': 'port-1' }),
        iface(TAP, 'tap1.0', { ...vifFacts, 'iface-id': VIF, 'vm-id': VM, 'iface-status': 'active', 'neutron-port-uuid': 'tap-own' }),
        iface('if-0003', 'tap2.0', { 'neutron-port-uuid': 'lone-tap' }),
        iface('if-0004', 'eth0', { 'xs-vif-uuid': VIF, 'iface-id': VIF, 'neutron-port-uuid': 'eth' }),
      ],
      setup: (x) => x.vifRec(VIF, { 'neutron-port-uuid': 'port-1' }),
      expect: {},
    },
    {
      name: 'neutronPortUuid false: neutron-port-uuid left as found',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': VIF, 'vm-id': VM, 'iface-status': 'active', 'neutron-port-uuid': 'stale' })],
      setup: (x) => x.vifRec(VIF, { 'neutron-port-uuid': 'port-1' }),
      facts: { ...NO_FACTS, neutronPortUuid: false },
      expect: {},
    },
    // managedKeys: a field left out is never written nor removed, and never waits for XAPI.
    {
      name: 'iface-id and neutron-port-uuid not managed: foreign values survive, a pending VIF holds nothing back',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': 'neutron-agent', 'neutron-port-uuid': 'theirs' })],
      setup: (x) => x.vifs.set(VIF, PENDING),
      facts: managingAllBut(['iface-id', 'neutron-port-uuid']),
      expect: { [IF]: { 'external_ids:vm-id': VM, 'external_ids:iface-status': 'active' } },
    },
    {
      name: 'iface-id not managed: no xs-vif-uuid does not remove it',
      rows: [iface(IF, 'eth1', { 'iface-id': 'theirs', 'vm-id': 'stale' })],
      facts: managingAllBut(['iface-id']),
      expect: { [IF]: { 'external_ids:vm-id': null } },
    },
    {
      name: 'copied keys and iface-status not managed: the tap keeps its own, ids still follow the vif',
      rows: [iface(IF, 'vif1.0', vifFacts), iface(TAP, 'tap1.0', { 'xs-vif-uuid': VIF2, 'iface-status': 'x' })],
      facts: managingAllBut(['attached-mac', 'xs-network-uuid', 'xs-vif-uuid', 'xs-vm-uuid', 'iface-status']),
      expect: {
        [IF]: { 'external_ids:iface-id': VIF, 'external_ids:vm-id': VM },
        [TAP]: { 'external_ids:iface-id': VIF, 'external_ids:vm-id': VM },
      },
    },
    {
      name: 'vm-id not managed: an invalid nicira-vm-id raises no warning',
      rows: [iface(IF, 'vif1.0', { ...vifFacts, 'iface-id': VIF, 'iface-status': 'active' })],
      setup: (x) => x.vmRec(VM, { 'nicira-vm-id': 'bad\u0007' }),
      facts: managingAllBut(['vm-id']),
      expect: {},
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const xapi = new FakeXapi();
      c.setup?.(xapi);
      const result = run(ovsView({ interfaces: c.rows }), xapi, c.facts);
      for (const row of c.rows) expect(changeFor(result, row.uuid), row.name).toEqual(c.expect[row.uuid] ?? {});
      expect(result.warnings.map((w) => w.code)).toEqual(c.warnings ?? []);
      const dep = (u: (typeof result.pending)[number]) =>
        u.dependency.kind === 'vif' || u.dependency.kind === 'vm' ? `${u.dependency.kind}:${u.dependency.uuid}` : u.dependency.kind;
      expect(result.pending.map(dep)).toEqual(c.pending ?? []);
      expect(result.unknown.map(dep)).toEqual(c.unknown ?? []);
    });
  }
});

describe('ChangeSet shape', () => {
  it('is sorted by table, uuid and key, and lists previous values', () => {
    const xapi = new FakeXapi().network('xenbr0', NET);
    xapi.hostState = hostState({});
    const ovs = ovsView({
      root: root(),
      bridges: [bridge('b-2', 'xenbr0', { 'xs-network-uuids': NET }), bridge('b-1', 'other', { 'bridge-id': 'old' })],
      interfaces: [iface('i-2', 'vif1.0', { 'xs-vif-uuid': VIF, 'iface-id': 'old' }), iface('i-1', 'eth0', { 'iface-status': 'x' })],
    });
    const { changes } = reconcileAll(ovs, xapi, NO_FACTS);
    expect(changes.map((c) => `${c.table}/${c.uuid}`)).toEqual([
      'Bridge/b-1',
      'Bridge/b-2',
      'Interface/i-1',
      'Interface/i-2',
      `Open_vSwitch/${ROOT_UUID}`,
    ]);
    const vif = changes.find((c) => c.uuid === 'i-2')!;
    expect(vif.maps).toEqual([
      {
        column: 'external_ids',
        set: [
          { key: 'iface-id', value: VIF, previous: 'old' },
          { key: 'iface-status', value: 'active', previous: undefined },
        ],
        remove: [],
      },
    ]);
    expect(changes.find((c) => c.uuid === 'b-2')!.scalars).toEqual([
      { column: 'fail_mode', value: 'standalone', previous: undefined },
    ]);
  });
});
