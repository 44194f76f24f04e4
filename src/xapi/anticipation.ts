import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import type { XapiCache, XapiChange } from './cache.js';
import type { XapiValue } from './codec/types.js';
import { isMissingColumn, lookupVifsByRef, lookupVifsOfVms, lookupVmsByRef, lookupVmsScheduledOn, type LookupOptions } from './lookups.js';
import { HostPlacementTracker } from './placement.js';
import { parseVmVifRefs, type HostPlacement, type VifRecord, type VmRecord } from './records.js';
import type { XapiCaller } from './session.js';

/** What to fetch ahead of need, taken from the queues in one go (see `Anticipation.take`). */
export interface AnticipationJob {
  /** VMs placed here but not known: fetched with their VIFs. */
  readonly vmRefs: ReadonlySet<string>;
  /** VIFs of placed VMs, not known (hot-plugged). */
  readonly vifRefs: ReadonlySet<string>;
  /** Placing operations changed: ask which VMs are scheduled here. */
  readonly askScheduled: boolean;
}

/** Records fetched ahead of their ports. */
export interface Anticipated {
  readonly vms: readonly VmRecord[];
  readonly vifs: readonly VifRecord[];
  /** The refs of the VMs scheduled on this host, when that was asked. */
  readonly scheduled: readonly string[] | undefined;
}

const NOTHING: Anticipated = { vms: [], vifs: [], scheduled: undefined };

export interface AnticipationOptions {
  readonly cache: XapiCache;
  readonly caller: XapiCaller;
  readonly logger: Logger;
  /** Whether a row refers to the VIF / VM of that uuid (its record is then kept whatever its placement). */
  readonly wantsVif: (uuid: string) => boolean;
  readonly wantsVm: (uuid: string) => boolean;
  /** Something was queued: the lookup batcher should run. */
  readonly requestLookup: () => void;
}

/**
 * Fetches the VMs placed on this host (`HostPlacementTracker`) and their VIFs ahead of their ports, so
 * the port of a starting, arriving or rebooting VM, or of a VIF hot-plugged into a running one, finds
 * its records already known: no XAPI round trip on its path. Runs inside the lookup batcher's passes;
 * only ever ahead of need, so a failure is logged and the ports concerned are looked up when they appear.
 */
export class Anticipation {
  private readonly o: AnticipationOptions;
  private readonly placement = new HostPlacementTracker();
  private queuedVmRefs = new Set<string>();
  private queuedVifRefs = new Set<string>();
  private askScheduled = false;
  /** Cleared when XAPI's database has no such column (see `lookupVmsScheduledOn`). */
  private scheduledQuerySupported = true;
  private hostRef: string | undefined;

  constructor(options: AnticipationOptions) {
    this.o = options;
  }

  get queued(): boolean {
    return this.queuedVmRefs.size > 0 || this.queuedVifRefs.size > 0 || this.askScheduled;
  }

  holds(vmRef: string): boolean {
    return this.placement.holds(vmRef);
  }

  /** A live record kept for a VM placed here: no row needs it now, but its port may come (back). */
  readonly vifHeld = (uuid: string): boolean => {
    const e = this.o.cache.vifs.get(uuid);
    return e.state === 'known' && !e.deleted && this.placement.holds(e.record.VM);
  };

  readonly vmHeld = (uuid: string): boolean => {
    const e = this.o.cache.vms.get(uuid);
    return e.state === 'known' && !e.deleted && this.placement.holds(e.record.ref);
  };

  /** Starts over from a fetched host record (a sync): nothing queued, only what rows refer to is kept. */
  reset(hostRef: string, placement: HostPlacement): void {
    this.hostRef = hostRef;
    this.placement.reset(placement);
    this.clearQueues();
    this.dropUnreferenced();
  }

  /**
   * XAPI is unreachable: records kept only for placement go, since no event can keep them true now,
   * and a port that appears meanwhile must get the default ids of an unknown object.
   */
  unreachable(): void {
    this.clearQueues();
    this.dropUnreferenced();
  }

  /** This host's record from an event: fetches what arrives, forgets what left. */
  observeHost(placement: HostPlacement): void {
    const update = this.placement.observe(placement);
    for (const ref of update.arrived) if (this.o.cache.vms.keyOf(ref) === undefined) this.queuedVmRefs.add(ref);
    if (update.askScheduled) this.askScheduled = true;
    this.prune(update.departed);
    if (this.queued) this.o.requestLookup();
  }

  /** A VM's snapshot from an event: a placed VM's VIFs not known yet are hot-plugged, their ports about to appear. */
  observeVm(ref: string, snapshot: XapiValue): void {
    if (!this.placement.holds(ref)) return;
    for (const vifRef of parseVmVifRefs(ref, snapshot)) if (this.o.cache.vifs.keyOf(vifRef) === undefined) this.queuedVifRefs.add(vifRef);
    if (this.queuedVifRefs.size > 0) this.o.requestLookup();
  }

  /** Empties the queues into one job. */
  take(): AnticipationJob {
    const job = { vmRefs: this.queuedVmRefs, vifRefs: this.queuedVifRefs, askScheduled: this.askScheduled };
    this.clearQueues();
    return job;
  }

  /** Fetches a job's records. Never throws but for an abort. */
  async fetch(job: AnticipationJob, options: LookupOptions): Promise<Anticipated> {
    const hostRef = this.hostRef;
    const ask = job.askScheduled && this.scheduledQuerySupported && hostRef !== undefined;
    if (job.vmRefs.size === 0 && job.vifRefs.size === 0 && !ask) return NOTHING;
    const caller = this.o.caller;
    // An odd record among them is skipped: it is looked up (and contained) when its port appears.
    const isolated: LookupOptions = {
      ...options,
      onUndecodable: (key) => {
        this.o.logger.debug({ key }, 'XAPI record fetched ahead of its port cannot be decoded; skipped');
      },
    };
    try {
      const [placed, scheduled] = await Promise.all([
        job.vmRefs.size > 0 ? lookupVmsByRef(caller, job.vmRefs, isolated) : [],
        ask ? this.scheduledVms(hostRef, isolated) : undefined,
      ]);
      const newlyScheduled = (scheduled ?? []).filter((vm) => !this.placement.holds(vm.ref));
      const vifLists = await Promise.all([
        lookupVifsOfVms(caller, [...placed, ...newlyScheduled].map((vm) => vm.ref), isolated),
        job.vifRefs.size > 0 ? lookupVifsByRef(caller, job.vifRefs, isolated) : [],
      ]);
      return { vms: [...placed, ...(scheduled ?? [])], vifs: vifLists.flat(), scheduled: scheduled?.map((vm) => vm.ref) };
    } catch (err) {
      if (options.signal?.aborted === true) throw err;
      this.o.logger.debug({ err: describeError(err) }, 'XAPI prefetch for VMs placed on this host failed; their ports are looked up when they appear');
      return NOTHING;
    }
  }

  /**
   * Known records for what is placed here (or wanted by a row meanwhile); the rest is dropped. Returns
   * the uuids it made known, which need no lookup of their own any more.
   */
  apply(anticipated: Anticipated, change: XapiChange): { vms: string[]; vifs: string[] } {
    const made = { vms: [] as string[], vifs: [] as string[] };
    if (anticipated.scheduled !== undefined) this.prune(this.placement.setScheduled(anticipated.scheduled));
    for (const vm of anticipated.vms) {
      if (!this.placement.holds(vm.ref) && !this.o.wantsVm(vm.uuid)) continue;
      this.o.cache.vms.set(vm.uuid, { state: 'known', record: vm, deleted: false }, change.vms);
      made.vms.push(vm.uuid);
    }
    for (const vif of anticipated.vifs) {
      if (!this.placement.holds(vif.VM) && !this.o.wantsVif(vif.uuid)) continue;
      this.o.cache.vifs.set(vif.uuid, { state: 'known', record: vif, deleted: false }, change.vifs);
      made.vifs.push(vif.uuid);
    }
    return made;
  }

  private async scheduledVms(hostRef: string, options: LookupOptions): Promise<VmRecord[] | undefined> {
    try {
      return await lookupVmsScheduledOn(this.o.caller, hostRef, options);
    } catch (err) {
      if (!isMissingColumn(err)) throw err;
      this.scheduledQuerySupported = false;
      this.o.logger.info({ err: describeError(err) }, 'XAPI cannot tell which VMs are scheduled on this host; ports of starting VMs are looked up when they appear');
      return undefined;
    }
  }

  private clearQueues(): void {
    this.queuedVmRefs = new Set();
    this.queuedVifRefs = new Set();
    this.askScheduled = false;
  }

  /** Drops the records of VMs no longer placed here, and of their VIFs, unless a row refers to them. */
  private prune(vmRefs: readonly string[]): void {
    const gone = new Set(vmRefs.filter((ref) => !this.placement.holds(ref)));
    if (gone.size === 0) return;
    const { vifs, vms } = this.o.cache;
    for (const ref of gone) {
      const uuid = vms.keyOf(ref);
      if (uuid !== undefined && !this.o.wantsVm(uuid)) vms.delete(uuid);
    }
    for (const uuid of [...vifs.keys()]) {
      const e = vifs.get(uuid);
      if (e.state === 'known' && gone.has(e.record.VM) && !this.o.wantsVif(uuid)) vifs.delete(uuid);
    }
  }

  /** Only what rows refer to is kept. */
  private dropUnreferenced(): void {
    const { vifs, vms } = this.o.cache;
    for (const uuid of [...vifs.keys()]) if (!this.o.wantsVif(uuid)) vifs.delete(uuid);
    for (const uuid of [...vms.keys()]) if (!this.o.wantsVm(uuid)) vms.delete(uuid);
  }
}
