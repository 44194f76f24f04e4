import type { Uuid } from './views.js';

/**
 * What the daemon owns (docs/design.md §2.4), per table: map keys per map column and whole scalar columns. The
 * rules only ever produce intents for these, the diff refuses anything else, and the tests check every
 * ChangeSet against this one description. Every other key of every map is left exactly as found.
 *
 * The four `COPIED_TAP_KEYS` are owned on `tapD.N` rows whose `vifD.N` exists, and only there; on every
 * other Interface row they are facts written by the hotplug scripts and are never touched.
 * `neutron-port-uuid` is owned on `vifD.N` rows only (docs/design.md §2: "(vif rows)"); on taps and other rows
 * it is left as found.
 *
 * Which of these the daemon actually writes is narrowed further by the config (`managedKeys`,
 * `neutronPortUuid`): see `MANAGED_KEYS`.
 */
export const OWNED = {
  Open_vSwitch: {
    maps: {
      external_ids: ['system-id', 'xs-system-uuid'],
      other_config: ['enable-statistics'],
    },
    scalars: ['system_type', 'system_version'],
  },
  Bridge: {
    maps: {
      external_ids: ['bridge-id'],
      other_config: ['disable-in-band'],
    },
    scalars: ['fail_mode'],
  },
  Interface: {
    maps: {
      external_ids: [
        'iface-id',
        'vm-id',
        'iface-status',
        'neutron-port-uuid',
        'attached-mac',
        'xs-network-uuid',
        'xs-vif-uuid',
        'xs-vm-uuid',
      ],
    },
    scalars: [],
  },
} as const satisfies Record<OwnedTable, TableOwnership>;

/** Keys a tap takes from its vif (docs/design.md §2.3). */
export const COPIED_TAP_KEYS = ['attached-mac', 'xs-network-uuid', 'xs-vif-uuid', 'xs-vm-uuid'] as const;

type OwnedName<T> = T extends { readonly maps: infer M; readonly scalars: readonly (infer S)[] }
  ? { [C in keyof M]: M[C] extends readonly (infer K)[] ? K : never }[keyof M] | S
  : never;

/**
 * The name of one owned field, as the config's `managedKeys` spells it: a map key by its key
 * (`iface-id`, `disable-in-band`), a scalar column by its column name (`fail_mode`). Every name is
 * owned in exactly one table, so a name alone says which field it is.
 */
export type ManagedKey = OwnedName<(typeof OWNED)[OwnedTable]>;

/**
 * Every owned field, in `OWNED` order: the default of `managedKeys`. A field left out of the config's
 * list is never written nor removed (docs/design.md §2 "Managed keys"), and the rules skip its XAPI lookups,
 * so it can neither make a row pending nor raise a warning.
 */
export const MANAGED_KEYS: readonly ManagedKey[] = (Object.keys(OWNED) as OwnedTable[]).flatMap((table) => {
  const own: TableOwnership = OWNED[table];
  return [...Object.values(own.maps).flat(), ...own.scalars] as ManagedKey[];
});

export type OwnedTable = 'Open_vSwitch' | 'Bridge' | 'Interface';
export type MapColumn = 'external_ids' | 'other_config';
export type ScalarColumn = 'fail_mode' | 'system_type' | 'system_version';

interface TableOwnership {
  readonly maps: Partial<Record<MapColumn, readonly string[]>>;
  readonly scalars: readonly ScalarColumn[];
}

/** True when the daemon owns `key` of map `column` in `table` (per `OWNED`). */
export function ownsMapKey(table: OwnedTable, column: MapColumn, key: string): boolean {
  const keys: readonly string[] | undefined = (OWNED[table].maps as TableOwnership['maps'])[column];
  return keys !== undefined && keys.includes(key);
}

/** True when the daemon owns scalar `column` of `table`. */
export function ownsScalar(table: OwnedTable, column: ScalarColumn): boolean {
  return (OWNED[table].scalars as readonly ScalarColumn[]).includes(column);
}

/**
 * Owned keys of one map column to change. The OVSDB layer turns it into one `mutate`: `delete` of
 * every key in `set` and `remove` (a map `insert` never overwrites an existing key, RFC 7047 §5.1 /
 * `ovsdb_datum_union`), then `insert` of the `set` pairs. Both lists are sorted by key.
 */
export interface MapChange {
  readonly column: MapColumn;
  readonly set: readonly MapEntry[];
  readonly remove: readonly string[];
}

export interface MapEntry {
  readonly key: string;
  readonly value: string;
  /** The value the replica held (for logs and an optional `wait` precondition); `undefined` when absent. */
  readonly previous: string | undefined;
}

/** One owned scalar column to write; `value: null` empties the optional column (the OVSDB empty set). */
export interface ScalarChange {
  readonly column: ScalarColumn;
  readonly value: string | null;
  readonly previous: string | undefined;
}

/** All changes to one row. Never empty: a row that needs nothing is not listed. */
export interface RowChange {
  readonly table: OwnedTable;
  readonly uuid: Uuid;
  /** The row's `name` (Bridge, Interface) for logs; `undefined` for the Open_vSwitch row. */
  readonly name: string | undefined;
  /** Sorted by column; each entry has at least one key to set or remove. */
  readonly maps: readonly MapChange[];
  /** Sorted by column. */
  readonly scalars: readonly ScalarChange[];
}

/** Sorted by table, then uuid. Empty when the database already holds the desired state: send nothing. */
export type ChangeSet = readonly RowChange[];

/** Stable codes of the conditions the rules report instead of logging (the pure core logs nothing). */
export type ReconcileWarningCode =
  /** Bridge `xs-network-uuids` lists several networks and the bridge's XAPI network is not among them. */
  | 'BRIDGE_ID_AMBIGUOUS'
  /** Network `vswitch-disable-in-band` is neither `true` nor `false`; `disable-in-band` left as is. */
  | 'DISABLE_IN_BAND_INVALID'
  /** Network or pool `vswitch-controller-fail-mode` is neither `standalone` nor `secure`; `standalone` used. */
  | 'FAIL_MODE_INVALID'
  /** An XAPI `nicira-*` override is not a safe id (too long, control or unprintable characters); ignored. */
  | 'OVERRIDE_INVALID'
  /** A host identity or version fact (config, XAPI or inventory) is not a safe value; the next source is used. */
  | 'SYSTEM_FACT_INVALID';

export interface ReconcileWarning {
  readonly code: ReconcileWarningCode;
  readonly table: OwnedTable;
  readonly uuid: Uuid;
  readonly name: string | undefined;
  /** One line, safe for logs: values from peers are quoted, escaped and truncated. */
  readonly message: string;
}

/** An XAPI object a row's fields depend on. */
export type XapiDependency =
  | { readonly kind: 'vif'; readonly uuid: Uuid }
  | { readonly kind: 'vm'; readonly uuid: Uuid }
  | { readonly kind: 'network'; readonly bridge: string }
  | { readonly kind: 'pool' }
  | { readonly kind: 'host' };

/**
 * A row with fields that depended on an object XAPI could not answer for. In `pending` the fields were
 * left alone (requeue the row when the lookup resolves); in `unknown` fallbacks were used (XAPI away).
 */
export interface UnresolvedRow {
  readonly table: OwnedTable;
  readonly uuid: Uuid;
  readonly name: string | undefined;
  readonly dependency: XapiDependency;
}

/** The outcome of one pass. Every list is in a deterministic order independent of view iteration order. */
export interface ReconcileResult {
  readonly changes: ChangeSet;
  readonly warnings: readonly ReconcileWarning[];
  readonly pending: readonly UnresolvedRow[];
  readonly unknown: readonly UnresolvedRow[];
}
