import type { Logger } from 'pino';
import { CodedError } from '../errors.js';
import { describeEndpoint, type XapiTransport } from './transport.js';

/** Unanswered calls in a row after which the configured address is given up for a survivor. */
export const CONFIGURED_SILENCE_LIMIT = 2;

/**
 * Which host of the pool the session talks to (issue 13 §2, "Master failover").
 *
 * The configured address is kept for the session's whole life. A `HOST_IS_SLAVE [master]` answer
 * (xapi-project/xen-api ocaml/xapi/xapi_session.ml:997-1002) moves the session to the master; when
 * that master stops answering, the session goes back to the configured address, whose xapi redirects
 * to whichever host is master by then. When the configured address does not answer either, the
 * pool's other members (their `host.address`, learned after each login) are tried one after the
 * other, as Xen Orchestra's `_failoverToSurvivor` does (vatesfr/xen-orchestra
 * packages/xen-api/index.mjs:1208-1222, candidates refreshed at :1080-1087 and :1125-1128): a member
 * that answers the login with `HOST_IS_SLAVE` names the current master, one that logs us in is it.
 * Unlike XO the probes are sequential: each is a login, and the first that works is kept, so no
 * session is opened only to be logged out again.
 */
export class PoolTargets {
  private readonly configured: XapiTransport;
  private active: XapiTransport;
  /** `host.address` of every pool member, from the last successful login (XO replaces, not merges). */
  private members: readonly string[] = [];
  /** Consecutive calls the configured address left unanswered while it was the target. */
  private unanswered = 0;

  constructor(
    configured: XapiTransport,
    private readonly logger: Logger,
  ) {
    this.configured = configured;
    this.active = configured;
  }

  /** The transport calls go to now. */
  get current(): XapiTransport {
    return this.active;
  }

  /** Whether the endpoint can be redirected at all (a unix socket forwards to the master itself). */
  get redirectable(): boolean {
    return this.configured.endpoint.kind !== 'unix';
  }

  /** The known member addresses (for tests and logs). */
  get knownMembers(): readonly string[] {
    return this.members;
  }

  setMembers(addresses: readonly string[]): void {
    this.members = [...new Set(addresses.filter((a) => a !== ''))];
  }

  /** A transport aimed at `host`, or undefined when the endpoint cannot be redirected. */
  toward(host: string): XapiTransport | undefined {
    return host === '' ? undefined : this.configured.withHost(host);
  }

  /** The target answered (a result or an XAPI failure). */
  answered(): void {
    this.unanswered = 0;
  }

  /** Calls go to `transport` from now on (a login through it succeeded). */
  adopt(transport: XapiTransport): void {
    this.unanswered = 0;
    if (transport === this.active) return;
    if (this.active !== this.configured) this.active.close();
    this.active = transport;
  }

  /**
   * `failed` did not answer. Returns true when the session should log in afresh: the calls went to a
   * master reached by redirect (go back to the configured address at once), or the configured
   * address itself has left {@link CONFIGURED_SILENCE_LIMIT} calls in a row unanswered and other
   * members are known (the next login fails over). Otherwise the session is kept and the call
   * retried where it was: a blip of a lone host, or of xapi restarting, costs no new session (which
   * would make the watcher resynchronise).
   */
  lost(failed: XapiTransport): boolean {
    if (failed !== this.active) return false;
    if (this.active !== this.configured) {
      this.logger.warn({ lost: describeEndpoint(this.active.endpoint), back: describeEndpoint(this.configured.endpoint) }, 'XAPI master not answering; back to the configured address');
      this.active.close();
      this.active = this.configured;
      return true;
    }
    this.unanswered++;
    return this.unanswered >= CONFIGURED_SILENCE_LIMIT && this.members.some((m) => m !== this.configuredHost());
  }

  private configuredHost(): string {
    return this.configured.endpoint.kind === 'unix' ? '' : this.configured.endpoint.host;
  }

  /**
   * Where to try a login, in order: the current target, then (when it is unreachable) every other
   * known member. Transports made for members not adopted are closed by `discard`.
   */
  survivors(failed: XapiTransport): XapiTransport[] {
    const tried = failed.endpoint.kind === 'unix' ? '' : failed.endpoint.host;
    const out: XapiTransport[] = [];
    if (failed !== this.configured) out.push(this.configured);
    for (const address of this.members) {
      if (address === tried || address === this.configuredHost()) continue;
      const t = this.toward(address);
      if (t !== undefined) out.push(t);
    }
    return out;
  }

  /** Closes a probe transport that was not adopted. */
  discard(transport: XapiTransport): void {
    if (transport !== this.active && transport !== this.configured) transport.close();
  }

  close(): void {
    if (this.active !== this.configured) this.active.close();
    this.configured.close();
  }
}

/** A failure that says the host did not answer at all (as opposed to an XAPI answer). */
export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof CodedError)) return false;
  const code: string = (err as CodedError<string>).code;
  return code === 'XAPI_TRANSPORT' || code === 'XAPI_TIMEOUT';
}
