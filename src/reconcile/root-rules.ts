import type { ScalarColumn } from './changeset.js';
import { manages, nonEmpty } from './intent.js';
import type { Findings, RowIntent, RowRef } from './intent.js';
import { isSafeId, quoteForLog } from './validate.js';
import type { OpenVSwitchRow, SystemFacts, XapiHost, XapiObjectState, XapiView } from './views.js';

/** The Open_vSwitch rules of docs/design.md §3 for the root row (the table of XAPI outcomes is in rules.ts). */
export function rootIntent(row: OpenVSwitchRow, xapi: XapiView, facts: SystemFacts, findings: Findings): RowIntent {
  const ref: RowRef = { table: 'Open_vSwitch', uuid: row.uuid, name: undefined };
  const ext = new Map<string, string | null>();
  const other = new Map<string, string | null>();
  const scalars: Partial<Record<ScalarColumn, string | null>> = {};
  const host = xapi.host();
  const inv = facts.inventory;

  const safe = (value: string | undefined, what: string): string | undefined => {
    const v = nonEmpty(value);
    if (v === undefined) return undefined;
    if (isSafeId(v)) return v;
    findings.warn(ref, 'SYSTEM_FACT_INVALID', `${what} ${quoteForLog(v)} is not a safe value; ignored`);
    return undefined;
  };

  // system-id and xs-system-uuid: config > inventory INSTALLATION_UUID > XAPI host. The host that
  // `session.get_this_host` names is the one that processed the login, which on a pool member reached over
  // http is the master (docs/xapi.md §8), so the XAPI host uuid is used only when there is no inventory.
  const idKeys = (['system-id', 'xs-system-uuid'] as const).filter((key) => manages(facts, key));
  const configured = idKeys.length === 0 ? undefined : safe(facts.systemId, 'config systemId');
  if (configured !== undefined) {
    for (const key of idKeys) ext.set(key, configured);
  } else if (idKeys.length > 0) {
    hostDerived(host, ref, findings, {
      fromHost: (h) => safe(inv.installationUuid, 'inventory INSTALLATION_UUID') ?? safe(h.uuid, 'XAPI host uuid'),
      fromInventory: () => safe(inv.installationUuid, 'inventory INSTALLATION_UUID'),
      apply: (value, keepExisting) => {
        for (const key of idKeys) {
          if (keepExisting && row.externalIds.get(key) !== undefined) continue;
          ext.set(key, value);
        }
      },
    });
  }

  if (manages(facts, 'system_type')) {
    hostDerived(host, ref, findings, {
      fromHost: (h) =>
        safe(h.softwareVersion.get('product_brand'), 'XAPI host product_brand') ??
        safe(inv.productBrand, 'inventory PRODUCT_BRAND'),
      fromInventory: () => safe(inv.productBrand, 'inventory PRODUCT_BRAND'),
      apply: (value, keepExisting) => {
        if (!(keepExisting && row.systemType !== undefined)) scalars.system_type = value;
      },
    });
  }

  const version = (v: string | undefined, b: string | undefined, what: string): string | undefined => {
    const pv = nonEmpty(v);
    const bn = nonEmpty(b);
    return pv === undefined || bn === undefined ? undefined : safe(`${pv}-${bn}`, what);
  };
  if (manages(facts, 'system_version')) {
    hostDerived(host, ref, findings, {
      fromHost: (h) =>
        version(h.softwareVersion.get('product_version'), h.softwareVersion.get('build_number'), 'XAPI host version') ??
        version(inv.productVersion, inv.buildNumber, 'inventory version'),
      fromInventory: () => version(inv.productVersion, inv.buildNumber, 'inventory version'),
      apply: (value, keepExisting) => {
        if (!(keepExisting && row.systemVersion !== undefined)) scalars.system_version = value;
      },
    });
  }

  if (facts.enableStatistics && manages(facts, 'enable-statistics')) other.set('enable-statistics', 'true');

  return {
    table: 'Open_vSwitch',
    uuid: row.uuid,
    name: undefined,
    current: {
      maps: { external_ids: row.externalIds, other_config: row.otherConfig },
      scalars: { system_type: row.systemType, system_version: row.systemVersion },
    },
    maps: { external_ids: ext, other_config: other },
    scalars,
  };
}

/** One host-derived field: known → host's (else inventory), absent → inventory, pending → leave, unknown → keep or inventory. */
function hostDerived(
  host: XapiObjectState<XapiHost>,
  ref: RowRef,
  findings: Findings,
  field: {
    fromHost: (h: XapiHost) => string | undefined;
    fromInventory: () => string | undefined;
    /** Sets the field to `value`; with `keepExisting`, only where the row has no value yet. */
    apply: (value: string, keepExisting: boolean) => void;
  },
): void {
  switch (host.state) {
    case 'known': {
      const v = field.fromHost(host.value);
      if (v !== undefined) field.apply(v, false);
      return;
    }
    case 'absent': {
      const v = field.fromInventory();
      if (v !== undefined) field.apply(v, false);
      return;
    }
    case 'pending':
      findings.unresolved(ref, 'pending', { kind: 'host' });
      return;
    case 'unknown': {
      findings.unresolved(ref, 'unknown', { kind: 'host' });
      const v = field.fromInventory();
      if (v !== undefined) field.apply(v, true);
      return;
    }
  }
}
