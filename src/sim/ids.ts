/**
 * Deterministic identifiers for the simulator: the same seed yields the same uuids, refs and MACs,
 * so a generated fixture is reproducible across runs (benchmarks compare like with like).
 */
export interface IdSource {
  uuid(): string;
  ref(): string;
  mac(): string;
}

/** mulberry32: a tiny, fast, well-distributed 32-bit PRNG (also the tests' replayable randomness). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

export function createIdSource(seed = 0x5eed): IdSource {
  const next = mulberry32(seed);
  let macCounter = 0;
  const uuid = (): string => {
    const w = [next(), next(), next(), next()];
    const [a = 0, b = 0, c = 0, d = 0] = w;
    // RFC 4122 version 4 / variant 10 bits, so the strings look like XAPI's uuids.
    const timeHi = ((b & 0x0fff) | 0x4000) >>> 0;
    const clock = ((c >>> 16) & 0x3fff) | 0x8000;
    return `${hex(a, 8)}-${hex(b >>> 16, 4)}-${hex(timeHi, 4)}-${hex(clock, 4)}-${hex(c & 0xffff, 4)}${hex(d, 8)}`;
  };
  return {
    uuid,
    // References look like `OpaqueRef:<uuid>` (docs/xapi.md §2.1, `Ref.string_of`).
    ref: () => `OpaqueRef:${uuid()}`,
    mac: () => {
      macCounter += 1;
      const n = macCounter;
      // Locally administered unicast prefix 02: never collides with a vendor OUI.
      return `02:00:${hex((n >>> 24) & 0xff, 2)}:${hex((n >>> 16) & 0xff, 2)}:${hex((n >>> 8) & 0xff, 2)}:${hex(n & 0xff, 2)}`;
    },
  };
}

export const NULL_REF = 'OpaqueRef:NULL';
