import type { HostPlacement } from './records.js';

/** What one host record changed about the VMs placed on this host. */
export interface PlacementChange {
  /** VM refs that became resident here. */
  readonly arrived: readonly string[];
  /** VM refs neither resident nor scheduled here any more. */
  readonly departed: readonly string[];
  /** VM-placing operations began or ended and some still run: which VMs are scheduled here is worth asking. */
  readonly askScheduled: boolean;
}

/**
 * The VMs placed on this host: resident (`host.resident_VMs`) or, while a placing operation runs,
 * scheduled (`VM.scheduled_to_be_resident_on`, known only by asking). Their ports are the ones that
 * will appear in OVSDB next: XAPI plugs a starting or arriving VM's VIFs before it sets
 * `resident_on` (`Xapi_xenops.start`, then `set_resident_on`), a rebooting VM stays resident while
 * its ports are replaced, and a VIF hot-plugged into a running VM is created in XAPI before its port.
 */
export class HostPlacementTracker {
  private resident = new Set<string>();
  private scheduled = new Set<string>();
  private tasks = new Set<string>();

  /** Whether `vmRef` is resident or scheduled here. */
  holds(vmRef: string): boolean {
    return this.resident.has(vmRef) || this.scheduled.has(vmRef);
  }

  get placing(): boolean {
    return this.tasks.size > 0;
  }

  /** Starts over from a fetched host record: nothing has arrived, nothing is scheduled. */
  reset(placement: HostPlacement): void {
    this.resident = new Set(placement.residentVms);
    this.scheduled = new Set();
    this.tasks = new Set(placement.placingTasks);
  }

  /** Takes in a later host record (an event snapshot). */
  observe(placement: HostPlacement): PlacementChange {
    const before = this.heldRefs();
    const resident = new Set(placement.residentVms);
    const arrived = placement.residentVms.filter((ref) => !this.resident.has(ref));
    const tasks = new Set(placement.placingTasks);
    const tasksChanged = tasks.size !== this.tasks.size || [...tasks].some((task) => !this.tasks.has(task));
    this.resident = resident;
    this.tasks = tasks;
    // A reservation lasts as long as the operation that made it (cleared in its `finally`).
    if (tasks.size === 0) this.scheduled = new Set();
    return { arrived, departed: before.filter((ref) => !this.holds(ref)), askScheduled: tasksChanged && tasks.size > 0 };
  }

  /**
   * The answer to "which VMs are scheduled here", asked after `askScheduled`. Ignored once no placing
   * operation runs (the answer is already stale). Returns the refs no longer held.
   */
  setScheduled(vmRefs: readonly string[]): string[] {
    if (this.tasks.size === 0) return [];
    const before = this.heldRefs();
    this.scheduled = new Set(vmRefs);
    return before.filter((ref) => !this.holds(ref));
  }

  private heldRefs(): string[] {
    return [...new Set([...this.resident, ...this.scheduled])];
  }
}
