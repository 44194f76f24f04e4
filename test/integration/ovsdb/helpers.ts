import { pino, type Logger } from 'pino';
import { Writable } from 'node:stream';
import { decodeStringMap } from '../../../src/ovsdb/notation.js';
import type { OvsdbSandbox } from '../../../src/sandbox/ovsdb-server.js';

export const silent: Logger = pino({ level: 'silent' });

/** Polls `predicate` every 10 ms until it returns a non-undefined/true value or the deadline passes. */
export async function waitFor<T>(what: string, predicate: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = predicate();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A logger whose JSON lines are kept in `lines`. */
export function capturingLogger(level = 'debug'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

export interface ServerRow {
  readonly uuid: string;
  readonly name: string;
  readonly externalIds: Map<string, string>;
}

/** What the server holds, read with ovs-vsctl's JSON output (not through our client). */
export async function serverRows(sb: OvsdbSandbox, table: 'Interface' | 'Bridge'): Promise<Map<string, ServerRow>> {
  const text = await sb.vsctl('--format=json', '--columns=_uuid,name,external_ids', 'list', table);
  const parsed = JSON.parse(text) as { data: [[string, string], string, unknown][] };
  const out = new Map<string, ServerRow>();
  for (const [uuid, name, ext] of parsed.data) out.set(uuid[1], { uuid: uuid[1], name, externalIds: decodeStringMap(ext) });
  return out;
}

export function sortedEntries(map: ReadonlyMap<string, string>): [string, string][] {
  return [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
