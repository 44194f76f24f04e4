import { describeError } from '../errors.js';

/**
 * A health check's verdict. `detail` is a short human-readable reason ("monitoring 3 tables",
 * "XAPI_TRANSPORT: connect ECONNREFUSED"); it must never contain secrets or session refs.
 */
export interface CheckResult {
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * A check is synchronous on purpose: it reads state the owning component already keeps, so a probe
 * answers within milliseconds even while a large transaction or XAPI reply is in flight. A check must
 * never await a peer (docs/platform.md §5: liveness must not depend on dependencies, readiness
 * reports their last known state).
 */
export type Check = () => CheckResult;

/** Runs one check; a check that throws or returns garbage counts as failed, with the reason. */
export function runCheck(check: Check): CheckResult {
  try {
    const result = check();
    if (typeof result !== 'object' || typeof result.ok !== 'boolean') {
      return { ok: false, detail: 'check returned an invalid result' };
    }
    return { ok: result.ok, detail: typeof result.detail === 'string' ? result.detail : '' };
  } catch (err) {
    return { ok: false, detail: `check threw: ${describeError(err)}` };
  }
}

/** Runs every check, in registration order. */
export function runChecks(checks: ReadonlyMap<string, Check>): Record<string, CheckResult> {
  const results: Record<string, CheckResult> = {};
  for (const [name, check] of checks) results[name] = runCheck(check);
  return results;
}

/**
 * XAPI readiness: a valid session and the event watcher following events. Reads only the public state
 * of the session (`valid`) and the watcher (`phase`); `url` names the peer in the detail.
 */
export function xapiReadiness(xapi: { readonly session: { readonly valid: boolean }; readonly watcher: { readonly phase: string } }, url: string): CheckResult {
  const { session, watcher } = xapi;
  return session.valid && watcher.phase === 'live'
    ? { ok: true, detail: 'session valid, following events' }
    : { ok: false, detail: `XAPI ${watcher.phase}, session ${session.valid ? 'valid' : 'not valid'} (${url})` };
}
