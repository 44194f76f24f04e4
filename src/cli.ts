#!/usr/bin/env node
import { main } from './main.js';

// The bin entry point: the exit code is main's; process.exit also ends peers' lingering sockets
// once main has closed what it owns (DESIGN §4: SIGTERM exits 0 within 5 s).
void main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  () => process.exit(1),
);
