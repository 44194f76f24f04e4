/**
 * What the demo prints of the database: a snapshot of the rows the daemon maintains (read with
 * `ovs-vsctl --format=json --data=json list`, as an operator would), rendered as plain-text tables
 * with the cells that changed since the previous snapshot marked.
 */

/** RFC 7047 §5.1 `<value>` as ovs-vsctl's `--data=json` prints it. */
type JsonDatum = string | number | boolean | readonly [string, unknown];

export interface OvsRow {
  readonly uuid: string;
  readonly externalIds: Readonly<Record<string, string>>;
  readonly systemType: string | undefined;
  readonly systemVersion: string | undefined;
}

export interface BridgeRow {
  readonly name: string;
  readonly failMode: string | undefined;
  readonly externalIds: Readonly<Record<string, string>>;
  readonly otherConfig: Readonly<Record<string, string>>;
}

export interface InterfaceRow {
  readonly name: string;
  readonly externalIds: Readonly<Record<string, string>>;
}

export interface Snapshot {
  readonly ovs: OvsRow | undefined;
  readonly bridges: readonly BridgeRow[];
  readonly interfaces: readonly InterfaceRow[];
}

export const EMPTY_SNAPSHOT: Snapshot = { ovs: undefined, bridges: [], interfaces: [] };

/** `vifD.N` and `tapD.N`: the VM ports; other interfaces (a bridge's internal port) carry no ids. */
export const VM_PORT = /^(vif|tap)\d+\.\d+$/;

const UUID = /\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;

/** Shortens every UUID in `text` to its first group (like a short git hash); other text is kept. */
export function abbreviate(text: string): string {
  return text.replace(UUID, '$1');
}

function isPair(value: unknown): value is readonly [string, unknown] {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === 'string';
}

function mapOf(datum: unknown): Record<string, string> {
  if (!isPair(datum) || datum[0] !== 'map' || !Array.isArray(datum[1])) return {};
  const out: Record<string, string> = {};
  for (const pair of datum[1] as unknown[]) {
    if (isPair(pair) && typeof pair[1] === 'string') out[pair[0]] = pair[1];
  }
  return out;
}

/** An optional scalar column: the atom itself, or an empty set (`["set",[]]`) for none. */
function optionalString(datum: unknown): string | undefined {
  if (typeof datum === 'string') return datum;
  return undefined;
}

function uuidOf(datum: unknown): string {
  return isPair(datum) && datum[0] === 'uuid' && typeof datum[1] === 'string' ? datum[1] : '';
}

/** Parses `ovs-vsctl --format=json --data=json --columns=A,B,… list TABLE` into one record per row. */
export function parseList(text: string, columns: readonly string[]): Record<string, JsonDatum>[] {
  const parsed = JSON.parse(text) as { headings?: unknown; data?: unknown };
  const headings = Array.isArray(parsed.headings) ? (parsed.headings as unknown[]) : [...columns];
  const data = Array.isArray(parsed.data) ? (parsed.data as unknown[]) : [];
  return data.map((row) => {
    const cells = Array.isArray(row) ? (row as JsonDatum[]) : [];
    const out: Record<string, JsonDatum> = {};
    headings.forEach((h, i) => {
      const cell = cells[i];
      if (typeof h === 'string' && cell !== undefined) out[h] = cell;
    });
    return out;
  });
}

/** Reads a snapshot through `vsctl` (an `ovs-vsctl` runner resolving with stdout). */
export async function readSnapshot(vsctl: (...args: string[]) => Promise<string>): Promise<Snapshot> {
  const list = async (table: string, columns: readonly string[]): Promise<Record<string, JsonDatum>[]> =>
    parseList(await vsctl('--format=json', '--data=json', `--columns=${columns.join(',')}`, 'list', table), columns);
  const [ovsRows, bridgeRows, ifaceRows] = await Promise.all([
    list('Open_vSwitch', ['_uuid', 'external_ids', 'system_type', 'system_version']),
    list('Bridge', ['name', 'fail_mode', 'external_ids', 'other_config']),
    list('Interface', ['name', 'external_ids']),
  ]);
  const first = ovsRows[0];
  const ovs: OvsRow | undefined =
    first === undefined
      ? undefined
      : {
          uuid: uuidOf(first._uuid),
          externalIds: mapOf(first.external_ids),
          systemType: optionalString(first.system_type),
          systemVersion: optionalString(first.system_version),
        };
  const bridges = bridgeRows
    .map((r) => ({ name: optionalString(r.name) ?? '', failMode: optionalString(r.fail_mode), externalIds: mapOf(r.external_ids), otherConfig: mapOf(r.other_config) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const interfaces = ifaceRows
    .map((r) => ({ name: optionalString(r.name) ?? '', externalIds: mapOf(r.external_ids) }))
    .filter((r) => VM_PORT.test(r.name))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  return { ovs, bridges, interfaces };
}

/** One rendered table: a title, headings, and rows of cells keyed for change detection. */
export interface Table {
  readonly title: string;
  readonly headings: readonly string[];
  readonly rows: readonly { readonly key: string; readonly cells: readonly string[] }[];
}

const NONE = '-';
const OWNED_OR_XS_INTERFACE_KEYS = new Set(['iface-id', 'vm-id', 'iface-status', 'neutron-port-uuid', 'attached-mac', 'xs-network-uuid', 'xs-vif-uuid', 'xs-vm-uuid']);
const OWNED_BRIDGE_KEYS = new Set(['bridge-id', 'xs-network-uuids']);

const show = (value: string | undefined): string => (value === undefined || value === '' ? NONE : abbreviate(value));

function foreignKeys(map: Readonly<Record<string, string>>, known: ReadonlySet<string>): string {
  const parts = Object.entries(map)
    .filter(([k]) => !known.has(k))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${abbreviate(v)}`);
  return parts.length === 0 ? NONE : parts.join(' ');
}

/** The four hotplug keys, abbreviated: the MAC's last two octets and the first group of each uuid. */
function xsKeys(map: Readonly<Record<string, string>>): string {
  const mac = map['attached-mac'];
  if ([mac, map['xs-network-uuid'], map['xs-vif-uuid'], map['xs-vm-uuid']].every((v) => v === undefined)) return NONE;
  const parts = [
    `mac=${mac === undefined ? NONE : `…${mac.slice(-5)}`}`,
    `net=${show(map['xs-network-uuid'])}`,
    `vif=${show(map['xs-vif-uuid'])}`,
    `vm=${show(map['xs-vm-uuid'])}`,
  ];
  return parts.join(' ');
}

/** The three tables of a snapshot, in the order the demo prints them. */
export function tablesOf(snapshot: Snapshot): Table[] {
  const ovs = snapshot.ovs;
  return [
    {
      title: 'Open_vSwitch',
      headings: ['row', 'system-id', 'xs-system-uuid', 'system_type', 'system_version'],
      rows:
        ovs === undefined
          ? []
          : [
              {
                key: '.',
                cells: [show(ovs.uuid), show(ovs.externalIds['system-id']), show(ovs.externalIds['xs-system-uuid']), show(ovs.systemType), show(ovs.systemVersion)],
              },
            ],
    },
    {
      title: 'Bridge',
      headings: ['name', 'fail_mode', 'bridge-id', 'disable-in-band', 'xs-network-uuids', 'other keys'],
      rows: snapshot.bridges.map((b) => ({
        key: b.name,
        cells: [
          b.name,
          show(b.failMode),
          show(b.externalIds['bridge-id']),
          show(b.otherConfig['disable-in-band']),
          show(b.externalIds['xs-network-uuids']),
          foreignKeys(b.externalIds, OWNED_BRIDGE_KEYS),
        ],
      })),
    },
    {
      title: 'Interface',
      headings: ['name', 'iface-id', 'vm-id', 'iface-status', 'xs keys', 'other keys'],
      rows: snapshot.interfaces.map((i) => ({
        key: i.name,
        cells: [
          i.name,
          show(i.externalIds['iface-id']),
          show(i.externalIds['vm-id']),
          show(i.externalIds['iface-status']),
          xsKeys(i.externalIds),
          foreignKeys(i.externalIds, OWNED_OR_XS_INTERFACE_KEYS),
        ],
      })),
    },
  ];
}

/** How changed cells, headings and dimmed text look; identity functions when colour is off. */
export interface Paint {
  readonly changed: (text: string) => string;
  readonly heading: (text: string) => string;
  readonly dim: (text: string) => string;
}

export const CHANGED_MARK = '*';

/**
 * Renders the tables of `current`, marking with `*` (and `paint.changed`) every cell that differs
 * from the same cell of `previous`; a row `previous` had and `current` lacks is listed as gone.
 */
export function render(current: Snapshot, previous: Snapshot, paint: Paint): string {
  const before = new Map<string, string>();
  const beforeRows = new Map<string, Set<string>>();
  for (const table of tablesOf(previous)) {
    beforeRows.set(table.title, new Set(table.rows.map((r) => r.key)));
    for (const row of table.rows) row.cells.forEach((cell, i) => before.set(`${table.title}\0${row.key}\0${String(i)}`, cell));
  }
  const out: string[] = [];
  for (const table of tablesOf(current)) {
    const marked = table.rows.map((row) =>
      row.cells.map((cell, i) => {
        const old = before.get(`${table.title}\0${row.key}\0${String(i)}`);
        // In a new row, an empty cell is no change (absent before, absent now).
        return { text: cell, changed: old === undefined ? cell !== NONE : old !== cell };
      }),
    );
    const widths = table.headings.map((h, i) => Math.max(h.length, ...marked.map((cells) => (cells[i]?.text.length ?? 0) + 1)));
    const pad = (text: string, i: number): string => text.padEnd(widths[i] ?? text.length);
    out.push(`  ${paint.heading(table.title.padEnd(13))}${table.headings.map((h, i) => paint.dim(pad(h, i))).join('  ')}`.trimEnd());
    if (marked.length === 0) out.push(`  ${' '.repeat(13)}${paint.dim('(no rows)')}`);
    for (const cells of marked) {
      const line = cells
        .map((c, i) => {
          const text = c.changed ? `${c.text}${CHANGED_MARK}` : c.text;
          const padded = pad(text, i);
          return c.changed ? paint.changed(padded) : padded;
        })
        .join('  ');
      out.push(`  ${' '.repeat(13)}${line}`.trimEnd());
    }
    const now = new Set(table.rows.map((r) => r.key));
    const gone = [...(beforeRows.get(table.title) ?? [])].filter((k) => !now.has(k));
    if (gone.length > 0) out.push(`  ${' '.repeat(13)}${paint.changed(`gone: ${gone.join(', ')}`)}`);
  }
  return out.join('\n');
}
