// npm run build, after tsc: bundles the daemon's entry (dist/cli.js) and everything it imports, pino and
// jsonrpc-lite included, into dist/bin/: ovs-xapi-sync.js and the chunks of its two dynamic imports
// (the daemon, and the `logs` viewer, which loads none of the daemon). This is what the package ships,
// what the tests and the bench run (src/sandbox/host.ts CLI), and what the launcher imports.
//
// Why (issue 14): node resolves, reads and compiles each ES module and each CommonJS file of a package
// one by one; the ~140 files of dist/ and node_modules cost the daemon 60-70 ms of CPU and ~100 ms of
// wall time before its first XAPI call. One file per chunk removes that.
//
// Left external, loaded at run time from node_modules with createRequire: the native addons (fs-ext,
// unix-dgram) and xml2js (XML-RPC only). esbuild leaves those calls alone: they are not `require` itself.
// prom-client's lib files are imported statically (src/health/prom.ts), so the bundle holds them.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = join(root, 'dist', 'bin');
rmSync(outdir, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: { 'ovs-xapi-sync': 'dist/cli.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  // The CommonJS dependencies (pino and its own) call require() for built-in modules; an ES module has
  // no `require`, so each output file gets one of its own.
  banner: { js: "import { createRequire as __oxsCreateRequire } from 'node:module'; const require = __oxsCreateRequire(import.meta.url);" },
  // Whitespace and syntax only: stack traces keep the functions' names.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
});
