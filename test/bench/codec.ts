import { performance } from 'node:perf_hooks';
import { generateFixture, loadFixture } from '../../src/sim/fixture.js';
import { createIdSource } from '../../src/sim/ids.js';
import { SimState } from '../../src/sim/state.js';
import { encodeXmlSuccess, setMember, type SimValue } from '../../src/sim/wire/index.js';
import type { XapiValue } from '../../src/xapi/codec/types.js';
import { decodeXmlRpcResponse, decodeXmlRpcResponseReference } from '../../src/xapi/codec/xmlrpc.js';

/**
 * XML-RPC reply decoding (issue 7 hot path): a `VIF.get_all_records_where` answer of `vifs` full VIF
 * records as the simulator's `state.record()` produces them, encoded like XAPI (docs/xapi.md §2),
 * decoded by the xml2js reference and by the fast path. A measurement, never a pass/fail test.
 * Heap growth is `heapUsed` right after one decode of a fresh body (garbage and body included, unless
 * a minor GC ran); retained heap what the decoded result keeps alive after a forced GC, the body
 * included when decoded strings share it. Run node with `--expose-gc`.
 */

/** The reply body the daemon receives for `VIF.get_all_records_where` over `vifs` VIFs. */
export function vifRecordsReply(vifs: number): string {
  const state = new SimState(createIdSource());
  loadFixture(state, generateFixture({ vms: Math.ceil(vifs / 4), vifsPerVm: 4 }));
  const records: Record<string, SimValue> = {};
  for (const row of state.all('VIF').slice(0, vifs)) setMember(records, row.ref, state.record(row));
  return encodeXmlSuccess(records);
}

const gc = (): void => {
  (globalThis as { gc?: () => void }).gc?.();
};

function measure(decode: (body: string, method: string) => XapiValue, bytes: Buffer, runs: number): { ms: number; growthMb: number; heapMb: number } {
  const body = bytes.toString('utf8');
  decode(body, 'VIF.get_all_records_where'); // warm-up (JIT)
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    gc();
    const t0 = performance.now();
    decode(body, 'VIF.get_all_records_where');
    times.push(performance.now() - t0);
  }
  gc();
  const before = process.memoryUsage().heapUsed;
  // A fresh body, dropped after decoding, as the transport does (`Buffer.concat(chunks).toString()`):
  // what stays is what the decoded value keeps alive, the body included if strings share it.
  const kept = decode(bytes.toString('utf8'), 'VIF.get_all_records_where');
  const growthMb = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  gc();
  const heapMb = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  if (kept === null) throw new Error('unreachable: keeps the result alive across the GC');
  times.sort((a, b) => a - b);
  const r1 = (x: number): number => Math.round(x * 10) / 10;
  return { ms: r1(times[Math.floor(times.length / 2)] ?? 0), growthMb: r1(growthMb), heapMb: r1(heapMb) };
}

/** Median decode time (ms) and retained heap (MB) per reply size and decoder. */
export function benchXmlRpcDecode(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const vifs of [1000, 5400]) {
    const bytes = Buffer.from(vifRecordsReply(vifs));
    const label = `xmlrpc decode ${(bytes.length / 2 ** 20).toFixed(1)} MB (${vifs} VIFs)`;
    out[`${label} bytes`] = bytes.length;
    for (const [name, decode] of [
      ['xml2js', decodeXmlRpcResponseReference],
      ['fast', decodeXmlRpcResponse],
    ] as const) {
      const r = measure(decode, bytes, vifs > 1000 ? 5 : 9);
      out[`${label} ${name} ms`] = r.ms;
      out[`${label} ${name} heap growth MB`] = r.growthMb;
      out[`${label} ${name} retained heap MB`] = r.heapMb;
    }
  }
  return out;
}

// `node --expose-gc dist-bench/test/bench/codec.js` prints the figures.
if (process.argv[1]?.endsWith('/codec.js') === true) {
  for (const [k, v] of Object.entries(benchXmlRpcDecode())) process.stdout.write(`${k.padEnd(60)} ${v}\n`);
}
