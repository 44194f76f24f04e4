import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InventoryFacts } from '../reconcile/views.js';

/** `/etc/xensource-inventory` under the root prefix (docs/xapi.md §7). */
export function inventoryPath(rootPrefix: string): string {
  return join(rootPrefix || '/', 'etc', 'xensource-inventory');
}

/**
 * Parses the inventory as XAPI's own reader does (docs/xapi.md §7, `inventory.ml:78-92`): one
 * `KEY='value'` per line, split on the first `=`, one pair of surrounding single quotes stripped,
 * whitespace trimmed. Lines without `=` are ignored.
 */
export function parseInventory(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) value = value.slice(1, -1);
    if (key !== '') out.set(key, value.trim());
  }
  return out;
}

export function inventoryFacts(entries: ReadonlyMap<string, string>): InventoryFacts {
  const get = (key: string): string | undefined => {
    const value = entries.get(key);
    return value === undefined || value === '' ? undefined : value;
  };
  return {
    installationUuid: get('INSTALLATION_UUID'),
    productBrand: get('PRODUCT_BRAND'),
    productVersion: get('PRODUCT_VERSION'),
    buildNumber: get('BUILD_NUMBER'),
  };
}

/** Reads the inventory; a missing or unreadable file yields no facts (XAPI may still say). */
export async function readInventory(rootPrefix: string): Promise<{ facts: InventoryFacts; error?: string }> {
  try {
    return { facts: inventoryFacts(parseInventory(await readFile(inventoryPath(rootPrefix), 'utf8'))) };
  } catch (err) {
    return { facts: {}, error: (err as Error).message };
  }
}
