/**
 * The demo's database tables: parsing `ovs-vsctl --format=json --data=json list` output, and marking
 * exactly the cells that changed between two snapshots.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findPrerequisites, parseDemoArgs } from '../../../src/demo/demo.js';
import { abbreviate, EMPTY_SNAPSHOT, parseList, readSnapshot, render, type Paint, type Snapshot } from '../../../src/demo/table.js';

const PLAIN: Paint = { changed: (t) => t, heading: (t) => t, dim: (t) => t };
const VIF = 'ad58fb81-729f-422d-a171-f8ff5fa57986';
const VM = '13cbd8a8-4d15-4a02-8793-f8ab7c2408c1';

// Verbatim ovs-vsctl 3.x output for the three lists the demo runs.
const OVS_JSON = '{"data":[[["uuid","8b538340-2c4d-472a-96cc-c9c5f8b97e1c"],["map",[["system-id","b5c4a8da-0000-4000-8000-000000000001"]]],"XCP-ng",["set",[]]]],"headings":["_uuid","external_ids","system_type","system_version"]}';
const BRIDGE_JSON = '{"data":[["br1","secure",["map",[["a","b"]]],["map",[]]],["br0",["set",[]],["map",[]],["map",[["disable-in-band","true"]]]]],"headings":["name","fail_mode","external_ids","other_config"]}';
const IFACE_JSON = `{"data":[["vif1.0",["map",[["iface-id","${VIF}"],["vm-id","${VM}"],["iface-status","active"]]]],["br0",["map",[]]],["vif10.0",["map",[]]],["vif2.0",["map",[]]]],"headings":["name","external_ids"]}`;

async function snapshotOf(ovs: string, bridges: string, ifaces: string): Promise<Snapshot> {
  return readSnapshot(async (...args) => {
    const table = args[args.length - 1];
    return table === 'Open_vSwitch' ? ovs : table === 'Bridge' ? bridges : ifaces;
  });
}

describe('demo tables', () => {
  it('parses ovs-vsctl JSON: maps, empty optional columns, VM ports only, natural order', async () => {
    const s = await snapshotOf(OVS_JSON, BRIDGE_JSON, IFACE_JSON);
    expect(s.ovs).toEqual({ uuid: '8b538340-2c4d-472a-96cc-c9c5f8b97e1c', externalIds: { 'system-id': 'b5c4a8da-0000-4000-8000-000000000001' }, systemType: 'XCP-ng', systemVersion: undefined });
    expect(s.bridges.map((b) => [b.name, b.failMode, b.otherConfig['disable-in-band']])).toEqual([
      ['br0', undefined, 'true'],
      ['br1', 'secure', undefined],
    ]);
    expect(s.interfaces.map((i) => i.name)).toEqual(['vif1.0', 'vif2.0', 'vif10.0']);
    expect(s.interfaces[0]!.externalIds['iface-status']).toBe('active');
  });

  it('tolerates a list with no rows and no headings', () => {
    expect(parseList('{"data":[],"headings":[]}', ['name'])).toEqual([]);
    expect(parseList('{}', ['name'])).toEqual([]);
  });

  it('shortens uuids to their first group and leaves other text alone', () => {
    expect(abbreviate(`iface-id=${VIF} vm=${VM} custom=sdn-port-42`)).toBe('iface-id=ad58fb81 vm=13cbd8a8 custom=sdn-port-42');
  });

  it('marks exactly the changed cells, not empty cells of a new row, and lists gone rows', async () => {
    const before = await snapshotOf(OVS_JSON, BRIDGE_JSON, IFACE_JSON);
    const changedIfaces = `{"data":[["vif1.0",["map",[["iface-id","${VIF}"],["vm-id","${VM}"],["iface-status","inactive"]]]],["tap1.0",["map",[["iface-status","active"]]]]],"headings":["name","external_ids"]}`;
    const after = await snapshotOf(OVS_JSON, BRIDGE_JSON, changedIfaces);
    const lines = render(after, before, PLAIN).split('\n');
    const vif = lines.find((l) => l.includes('vif1.0'))!;
    expect(vif).toContain('inactive*');
    expect(vif).not.toContain('ad58fb81*');
    expect(vif).not.toContain('vif1.0*');
    const tap = lines.find((l) => l.includes('tap1.0'))!;
    expect(tap).toContain('tap1.0*');
    expect(tap).toContain('active*');
    expect(tap).not.toContain('-*');
    expect(lines.find((l) => l.includes('gone:'))).toContain('vif2.0, vif10.0');
    expect(lines.filter((l) => l.includes('*'))).toHaveLength(2);
    // Against nothing, every non-empty cell is new.
    expect(render(after, EMPTY_SNAPSHOT, PLAIN)).toContain('XCP-ng*');
  });
});

describe('demo options and prerequisites', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oxs-demo-unit-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses --keep --fast --no-color and rejects anything else', () => {
    expect(parseDemoArgs([], true)).toEqual({ keep: false, fast: false, color: true });
    expect(parseDemoArgs(['--keep', '--fast', '--no-color'], true)).toEqual({ keep: true, fast: true, color: false });
    expect(parseDemoArgs([], false)).toEqual({ keep: false, fast: false, color: false });
    expect(parseDemoArgs(['--bogus'], true)).toMatch(/unknown option --bogus/);
  });

  it('names every missing program and the schema', () => {
    const r = findPrerequisites('', [], join(dir, 'no.ovsschema'));
    expect(r.missing).toEqual(['ovsdb-server', 'ovsdb-tool', 'ovs-vsctl', 'ovs-appctl', join(dir, 'no.ovsschema')]);
  });

  it('adds a fallback directory to PATH when a program is found only there', () => {
    const sbin = join(dir, 'sbin');
    const bin = join(dir, 'bin');
    const schema = join(dir, 'vswitch.ovsschema');
    const install = (d: string, tools: readonly string[]): void => {
      mkdirSync(d, { recursive: true });
      for (const t of tools) {
        writeFileSync(join(d, t), '#!/bin/sh\n');
        chmodSync(join(d, t), 0o755);
      }
    };
    install(sbin, ['ovsdb-server']);
    install(bin, ['ovsdb-tool', 'ovs-vsctl', 'ovs-appctl']);
    writeFileSync(schema, '{}');
    const r = findPrerequisites(bin, [sbin], schema);
    expect(r.missing).toEqual([]);
    expect(r.path.split(':')).toEqual([bin, sbin]);
    // A file that is there but not executable does not count.
    chmodSync(join(bin, 'ovs-appctl'), 0o644);
    expect(findPrerequisites(bin, [sbin], schema).missing).toEqual(['ovs-appctl']);
  });
});
