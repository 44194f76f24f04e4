#!/usr/bin/env node
/**
 * Entry point of `npm run demo` (see demo.ts). Like src/cli.ts, this is the one place of the demo that
 * touches `process`: argv, PATH, SIGINT/SIGTERM and the exit code.
 */
import { findPrerequisites, INSTALL_HINT, parseDemoArgs, runDemo, USAGE } from './demo.js';

async function main(): Promise<number> {
  const write = (text: string): void => {
    process.stdout.write(text);
  };
  const noColorEnv = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  const parsed = parseDemoArgs(process.argv.slice(2), process.stdout.isTTY && !noColorEnv);
  if (typeof parsed === 'string') {
    process.stderr.write(`${parsed}\n`);
    return 2;
  }
  if ('help' in parsed) {
    write(`${USAGE}\n`);
    return 0;
  }
  const prerequisites = findPrerequisites(process.env.PATH ?? '');
  if (prerequisites.missing.length > 0) {
    process.stderr.write(
      `The demo runs a private ovsdb-server and needs Open vSwitch (missing: ${prerequisites.missing.join(', ')}).\n` +
        `Install it with:  ${INSTALL_HINT}\n`,
    );
    return 1;
  }
  // Debian installs ovsdb-server in /usr/sbin, which a non-root user's PATH lacks; the sandbox spawns by name.
  process.env.PATH = prerequisites.path;
  const controller = new AbortController();
  const onSignal = (): void => {
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return runDemo(parsed, write, controller.signal);
}

// process.exit also ends what the demo's peers may leave behind (keep-alive sockets) once it has
// closed what it owns.
void main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
