import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inventoryFacts, inventoryPath, parseInventory, readInventory } from '../../../src/sync/inventory.js';

describe('xensource-inventory', () => {
  it.each([
    ["INSTALLATION_UUID='13ea7f70-1111-2222-3333-444455556666'", 'INSTALLATION_UUID', '13ea7f70-1111-2222-3333-444455556666'],
    ['BUILD_NUMBER=90233c', 'BUILD_NUMBER', '90233c'],
    ["  PRODUCT_BRAND = 'XCP-ng'  ", 'PRODUCT_BRAND', 'XCP-ng'],
    ["OEM='a=b'", 'OEM', 'a=b'],
    ["EMPTY=''", 'EMPTY', ''],
  ])('parses %s', (line, key, value) => {
    expect(parseInventory(`${line}\n`).get(key)).toBe(value);
  });

  it('ignores lines without a key', () => {
    expect([...parseInventory('garbage\n=x\n\n').keys()]).toEqual([]);
  });

  it('maps the keys the rules use and drops empty values', () => {
    const facts = inventoryFacts(parseInventory("INSTALLATION_UUID='u'\nPRODUCT_BRAND='XCP-ng'\nPRODUCT_VERSION='8.3.0'\nBUILD_NUMBER=''\n"));
    expect(facts).toEqual({ installationUuid: 'u', productBrand: 'XCP-ng', productVersion: '8.3.0', buildNumber: undefined });
  });

  it('reads the file under the root prefix, and reports a missing one without throwing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'inv-'));
    expect(inventoryPath(root)).toBe(join(root, 'etc/xensource-inventory'));
    const missing = await readInventory(root);
    expect(missing.facts).toEqual({});
    expect(missing.error).toMatch(/ENOENT/);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(root, 'etc'));
    writeFileSync(inventoryPath(root), "INSTALLATION_UUID='abc'\n");
    expect((await readInventory(root)).facts.installationUuid).toBe('abc');
  });
});
