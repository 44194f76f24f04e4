import { isIP } from 'node:net';
import type { NetConnectOpts } from 'node:net';
import { OvsdbError } from './errors.js';

/**
 * An active OVSDB remote (ovsdb(7) "Connection Methods"): `unix:PATH` or `tcp:HOST:PORT`, IPv6 literals in
 * brackets. `ssl:` is recognised but not supported yet; passive forms (`punix:`, `ptcp:`) are server-side.
 */
export type OvsdbRemote =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function invalid(remote: string, why: string): OvsdbError {
  return new OvsdbError('OVSDB_REMOTE_INVALID', `invalid OVSDB remote "${remote}": ${why} (expected unix:PATH or tcp:HOST:PORT)`);
}

/** Parses a remote string; throws `OvsdbError` `OVSDB_REMOTE_INVALID` with the reason. */
export function parseRemote(remote: string): OvsdbRemote {
  const colon = remote.indexOf(':');
  if (colon < 0) throw invalid(remote, 'missing method prefix');
  const method = remote.slice(0, colon);
  const rest = remote.slice(colon + 1);
  switch (method) {
    case 'unix':
      if (rest === '') throw invalid(remote, 'empty socket path');
      if (rest.includes('\0')) throw invalid(remote, 'socket path contains a NUL byte');
      return { kind: 'unix', path: rest };
    case 'tcp':
      return parseTcp(remote, rest);
    case 'ssl':
      throw invalid(remote, 'ssl: remotes are not supported yet; use unix: (the local db.sock) or tcp:');
    case 'punix':
    case 'ptcp':
    case 'pssl':
      throw invalid(remote, `${method}: is a passive (listening) remote; the daemon needs an active one`);
    default:
      throw invalid(remote, `unknown method "${method}"`);
  }
}

function parseTcp(remote: string, rest: string): OvsdbRemote {
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw invalid(remote, 'unterminated "[" in IPv6 address');
    host = rest.slice(1, close);
    if (isIP(host) !== 6) throw invalid(remote, `"${host}" is not an IPv6 address`);
    const after = rest.slice(close + 1);
    if (!after.startsWith(':')) throw invalid(remote, 'missing ":PORT" after the IPv6 address');
    portText = after.slice(1);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon < 0) throw invalid(remote, 'missing ":PORT"');
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) throw invalid(remote, 'an IPv6 address must be written in brackets, e.g. tcp:[::1]:6640');
    if (host === '') throw invalid(remote, 'empty host');
    if (isIP(host) !== 4 && !HOSTNAME.test(host)) throw invalid(remote, `"${host}" is not an IPv4 address or a host name`);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) throw invalid(remote, `port "${portText}" is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw invalid(remote, `port ${port} is out of range 1-65535`);
  return { kind: 'tcp', host, port };
}

/** Options for `net.connect`. */
export function connectOptions(remote: OvsdbRemote): NetConnectOpts {
  return remote.kind === 'unix' ? { path: remote.path } : { host: remote.host, port: remote.port };
}

/** The canonical string form (round-trips through `parseRemote`). */
export function formatRemote(remote: OvsdbRemote): string {
  if (remote.kind === 'unix') return `unix:${remote.path}`;
  return isIP(remote.host) === 6 ? `tcp:[${remote.host}]:${remote.port}` : `tcp:${remote.host}:${remote.port}`;
}
