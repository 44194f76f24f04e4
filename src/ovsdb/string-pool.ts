/**
 * One shared copy of each equal string decoded within one batch (a monitor reply, one update).
 * `JSON.parse` gives every string value its own copy, so the replica held, at 6000 Interface rows, each
 * network uuid ~1500 times and each VM uuid once per interface of the VM (`xs-network-uuid`,
 * `xs-vm-uuid`), and `iface-id` / `vm-id` apart from the equal `xs-vif-uuid` / `xs-vm-uuid` of the same
 * row (heap snapshot, stress-2ms). A pool lives for one batch only, so it retains nothing afterwards and
 * a peer cannot grow it beyond the size of what it sent.
 */
export class StringPool {
  /** Strings this short are already shared by V8 (`JSON.parse` internalizes them); longer ones rarely repeat. */
  static readonly MIN_LENGTH = 11;
  static readonly MAX_LENGTH = 128;
  private readonly strings = new Map<string, string>();

  /**
   * The copy of `value` to keep: an equal value of `row` (the map being updated) when there is one,
   * else the first equal string of this batch.
   */
  intern(value: string, row?: ReadonlyMap<string, string>): string {
    if (value.length < StringPool.MIN_LENGTH || value.length > StringPool.MAX_LENGTH) return value;
    if (row !== undefined) {
      for (const existing of row.values()) {
        if (existing === value) {
          sharedCount++;
          return existing;
        }
      }
    }
    const known = this.strings.get(value);
    if (known === undefined) {
      this.strings.set(value, value);
      return value;
    }
    sharedCount++;
    return known;
  }
}

let sharedCount = 0;

/** How many decoded strings were replaced by an earlier equal copy since the process started. */
export function sharedStrings(): number {
  return sharedCount;
}
