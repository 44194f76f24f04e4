import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { daemonChunk, REPO_ROOT } from '../../../src/sandbox/host.js';

/*
 * What loading the daemon pulls in (docs/platform.md §6): a child node imports the daemon's chunk of the
 * bundle that ships (`main-*.js` next to `CLI`, built by `npm test`) without running it, and reports the
 * built-in modules node loaded and the CommonJS files required. Each module kept out here is megabytes of
 * RSS on every hypervisor.
 */
function loadedBy(entry: string): { builtins: string[]; files: string[] } {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(entry)});
    const files = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({ builtins: process.moduleLoadList, files }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
  return JSON.parse(out) as { builtins: string[]; files: string[] };
}

describe('the daemon modules, loaded', () => {
  const chunk = daemonChunk();
  const { builtins, files } = loadedBy(chunk);
  const source = readFileSync(chunk, 'utf8');

  it('load node:http without undici (an ESM import of node:http would read its lazy WebSocket export)', () => {
    expect(builtins).toContain('NativeModule http');
    expect(builtins.filter((m) => m.includes('undici'))).toEqual([]);
  });

  it('load neither tls nor zlib: https is loaded only for an https XAPI URL, and prom-client without its Pushgateway', () => {
    expect(builtins.filter((m) => /^NativeModule (tls|https|zlib)$/.test(m))).toEqual([]);
  });

  it('hold the prom-client files they use, and neither @opentelemetry/api nor its Pushgateway or cluster aggregator', () => {
    // src/health/prom.ts imports prom-client's lib files one by one, so the bundle holds them and only them.
    expect(source).toContain('nodejs_heap_size_total_bytes');
    expect(source).not.toMatch(/@opentelemetry|pushgateway|AggregatorRegistry/i);
    expect(files.filter((f) => /@opentelemetry|prom-client\//.test(f))).toEqual([]);
  });
});
