import { packageVersion, PROGRAM_NAME, type Config } from '../config/index.js';
import type { OvsdbClientCounters } from '../ovsdb/client.js';
import type { SyncStatus } from '../sync/engine.js';

/** What the status output says besides the engine's own status. */
export interface StatusContext {
  readonly config: Pick<Config, 'database' | 'xapi' | 'xapiProtocol' | 'dryRun'>;
  readonly ovsdb: Pick<OvsdbClientCounters, 'reconnects' | 'monitorMethod'>;
  readonly xapiSessionValid: boolean;
}

/** One line for systemd's `STATUS=` (shown by `systemctl status`). */
export function statusLine(s: SyncStatus): string {
  const state = s.converged ? 'converged' : s.lastError !== undefined ? `retrying (${s.lastError})` : 'reconciling';
  return `${state}; ${s.rows.interfaces} interfaces, ${s.rows.bridges} bridges; ovsdb ${s.ovsdb}; xapi ${s.xapi}`;
}

/** The answer to `ovs-appctl -t ovs-xapi-sync status`. */
export function statusText(s: SyncStatus, context: StatusContext): string {
  const { config: c, ovsdb } = context;
  const last = s.lastPass;
  const lines = [
    `${PROGRAM_NAME} ${packageVersion()}`,
    `ovsdb: ${s.ovsdb} (${c.database}), reconnects ${ovsdb.reconnects}, monitor ${ovsdb.monitorMethod ?? '-'}`,
    `xapi: ${s.xapi}${s.xapiSynced ? '' : ' (not synced)'} (${c.xapi}, ${c.xapiProtocol}), session ${context.xapiSessionValid ? 'valid' : 'not valid'}`,
    `rows: ${s.rows.bridges} bridges, ${s.rows.interfaces} interfaces`,
    `reconcile: ${s.converged ? 'converged' : 'not converged'}, ${s.passes} passes`,
    last === undefined
      ? 'last pass: none yet'
      : `last pass: ${last.result} at ${s.lastPassAt?.toISOString() ?? '-'} in ${(last.seconds * 1000).toFixed(2)} ms, ${last.rows} rows changed, ${last.pending} pending, ${last.unknown} using fallbacks`,
    `last error: ${s.lastError ?? 'none'}`,
    `warnings: ${s.warnings}`,
    `dry run: ${c.dryRun ? 'yes' : 'no'}`,
  ];
  return lines.join('\n');
}
