import { SIM_CLASSES, type SimClass, type SimState } from './state.js';
import { Int32, type SimValue } from './wire/values.js';

/**
 * `event.from` as xapi computes it (xapi-project/xen-api ocaml/xapi/xapi_event.ml:549-734):
 * rows changed after the token's generation, classified add/mod/del, coalesced per object; the new
 * token is the generation of the last MATCHING change (`last`, :555-586), so it comes back
 * unchanged when nothing matched (a timeout). A token ahead of the database matches nothing and
 * therefore returns unchanged at every timeout, exactly like xapi's.
 */

/** A parsed subscription: `*`, a class or one object; classes lowercased (xapi_event.ml:56-79). */
export interface Subscriptions {
  readonly all: boolean;
  readonly classes: ReadonlySet<string>;
  readonly objects: ReadonlySet<string>;
}

export function parseSubscriptions(items: readonly string[]): Subscriptions {
  const classes = new Set<string>();
  const objects = new Set<string>();
  let all = false;
  for (const x of items) {
    if (x === '*') all = true;
    else {
      const slash = x.indexOf('/');
      if (slash < 0) classes.add(x.toLowerCase());
      else objects.add(`${x.slice(0, slash).toLowerCase()}/${x.slice(slash + 1)}`);
    }
  }
  return { all, classes, objects };
}

function matches(subs: Subscriptions, cls: SimClass, ref: string): boolean {
  const c = cls.toLowerCase();
  return subs.all || subs.classes.has(c) || subs.objects.has(`${c}/${ref}`);
}

function tableMatches(subs: Subscriptions, cls: SimClass): boolean {
  const c = cls.toLowerCase();
  if (subs.all || subs.classes.has(c)) return true;
  for (const o of subs.objects) if (o.startsWith(`${c}/`)) return true;
  return false;
}

/** `Token.to_string` (xapi_event.ml:46-49): two zero-padded generations. */
export function tokenOf(generation: number): string {
  return `${String(Math.max(0, generation)).padStart(20, '0')},${'0'.padStart(20, '0')}`;
}

/** `Token.of_string` (xapi_event.ml:37-44): `""` is (0,0); undefined when it does not parse. */
export function parseToken(token: string): number | undefined {
  if (token === '') return 0;
  const parts = token.split(',');
  if (parts.length !== 2 || !parts.every((p) => /^[+-]?\d+$/.test(p.trim()))) return undefined;
  return Number(parts[0]);
}

export interface EventBatch {
  readonly events: SimValue[];
  readonly value: SimValue;
}

/** One scan (`collect_events` + `events_of`); `sessions` is the session table's row count. */
export function scanEvents(state: SimState, since: number, subs: Subscriptions, sessions: number): EventBatch {
  let last = since;
  const adds: SimValue[] = [];
  const mods: SimValue[] = [];
  const dels: SimValue[] = [];
  for (const cls of SIM_CLASSES) {
    if (!tableMatches(subs, cls)) continue;
    const lower = cls.toLowerCase();
    for (const row of state.all(cls)) {
      if (row.modified <= since || !matches(subs, cls, row.ref)) continue;
      last = Math.max(last, row.modified);
      const created = row.created > since;
      (created ? adds : mods).push({ id: String(created ? row.created : row.modified), timestamp: '0.0', class: lower, operation: created ? 'add' : 'mod', ref: row.ref, snapshot: state.record(row) });
    }
    // Only deletions of rows that existed at the token are folded (`fold_over_deleted`,
    // db_cache_types.ml:266-286); a row created and deleted since then neither shows nor moves the token.
    for (const t of state.deletions(cls, since)) {
      if (t.created > since || !matches(subs, cls, t.ref)) continue;
      last = Math.max(last, t.deleted);
      dels.push({ id: String(t.deleted), timestamp: '0.0', class: lower, operation: 'del', ref: t.ref });
    }
  }
  // valid_ref_counts covers every table, subscribed or not, as Int32 (xapi_event.ml:722-731).
  const counts: Record<string, SimValue> = { session: new Int32(sessions) };
  for (const cls of SIM_CLASSES) counts[cls.toLowerCase()] = new Int32(state.count(cls));
  const events = [...adds, ...mods, ...dels];
  return { events, value: { events, valid_ref_counts: counts, token: tokenOf(last) } };
}
