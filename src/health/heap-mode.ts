import type * as V8 from 'node:v8';

/*
 * Once the cold start is over, V8 is told to favour memory over speed (docs/platform.md §7): V8 reads
 * `--memory-saver-mode` whenever it sizes the heap, so setting it at run time takes effect at the next GC,
 * which releases the free pages the burst left and compacts; the heap then grows conservatively. The cold
 * start keeps the default mode: started with the flag, the daemon spent 0.45 s more CPU on it (stress
 * bench). Taken through getBuiltinModule like the other built-ins (src/node-builtins.ts).
 */
const v8: typeof V8 = process.getBuiltinModule('node:v8');

/** The V8 flag that favours memory (its test checks that the shipped node still knows it). */
export const MEMORY_SAVER_FLAG = '--memory-saver-mode';

/**
 * Whether this V8 knows the flag: V8 13 (Node 24, the runtime the package ships) does, V8 12.4 (Node 22)
 * does not, and `setFlagsFromString` answers an unknown flag with an error line on stderr. On Node 22 the
 * daemon keeps V8's default heap sizing.
 */
export const MEMORY_SAVER_SUPPORTED = Number(process.versions.v8.split('.')[0]) >= 13;

let favoured = false;

/** Switches V8 to its memory-saver mode, once, where V8 has it; later calls do nothing. */
export function favourMemory(): void {
  if (favoured || !MEMORY_SAVER_SUPPORTED) return;
  favoured = true;
  v8.setFlagsFromString(MEMORY_SAVER_FLAG);
}
