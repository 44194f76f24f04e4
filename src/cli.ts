#!/usr/bin/env node

// The bin entry point: the exit code is main's; process.exit also ends peers' lingering sockets
// once main has closed what it owns (docs/design.md §6: SIGTERM exits 0 within 5 s).
// `logs` is the one subcommand (the journal viewer, issue 15); it does not load the daemon's modules.
const argv = process.argv.slice(2);
const run =
  argv[0] === 'logs'
    ? import('./logs/cli.js').then((m) => m.runLogs(argv.slice(1)))
    : import('./main.js').then((m) => m.main(argv));
void run.then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
