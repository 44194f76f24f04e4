import type * as Http from 'node:http';
import type * as Https from 'node:https';

/*
 * Built-in modules taken as their CommonJS objects. An ESM `import … from 'node:http'` builds a module
 * namespace from every export, which on Node 24 runs http's lazy `WebSocket` getter and so loads undici:
 * 13 MB more RSS before the daemon has done anything (docs/platform.md §6). process.getBuiltinModule
 * (Node ≥ 22.3) returns the object and leaves lazy getters alone.
 */

export const http: typeof Http = process.getBuiltinModule('node:http');

/** node:https loads tls and OpenSSL (7 MB RSS); only an `https://` XAPI URL needs it, so only that loads it. */
export function httpsModule(): typeof Https {
  return process.getBuiltinModule('node:https');
}
