import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { parseRemote } from '../ovsdb/remote.js';
import { MANAGED_KEYS, type ManagedKey } from '../reconcile/changeset.js';
import { isSafeId, MAX_ID_LENGTH, quoteForLog } from '../reconcile/validate.js';
import { DEFAULT_HEALTH_PORT, PROGRAM_NAME, type HealthAddress } from './schema.js';

/** Value kinds: each parses a command-line/environment string and a JSON value, or throws `Invalid`. */

export class Invalid extends Error {}

export interface Ctx {
  readonly rundir: string;
  readonly pid: number;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface Kind {
  /** Shown in help and in type errors. */
  readonly describe: string;
  fromString(raw: string, ctx: Ctx): unknown;
  fromJson(value: unknown, ctx: Ctx): unknown;
}

export function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

export function quote(raw: string): string {
  const s = JSON.stringify(raw);
  return s.length > 82 ? `${s.slice(0, 80)}…"` : s;
}

function viaString(kind: Omit<Kind, 'fromJson'>, expected: string, nullable = false): Kind {
  return {
    ...kind,
    fromJson(value, ctx) {
      if (value === null && nullable) return null;
      if (typeof value !== 'string') throw new Invalid(`expected ${expected}, got ${typeOf(value)}`);
      return kind.fromString(value, ctx);
    },
  };
}

export const remoteKind: Kind = viaString(
  {
    describe: 'unix:PATH|tcp:HOST:PORT',
    fromString(raw) {
      try {
        parseRemote(raw);
      } catch (err) {
        throw new Invalid(err instanceof Error ? err.message : String(err));
      }
      return raw;
    },
  },
  'a string',
);

export const xapiUrlKind: Kind = viaString(
  {
    describe: 'unix:PATH|http://HOST[:PORT]|https://HOST[:PORT]',
    fromString(raw) {
      if (raw.startsWith('unix:')) {
        const path = raw.slice(5);
        if (path === '' || path.includes('\0')) throw new Invalid(`${quote(raw)} has an empty or invalid socket path`);
        return raw;
      }
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new Invalid(`${quote(raw)} is not unix:PATH or an http:// or https:// URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new Invalid(`unsupported scheme "${url.protocol}" (expected unix:, http: or https:)`);
      }
      if (url.hostname === '') throw new Invalid(`${quote(raw)} has no host`);
      if (url.username !== '' || url.password !== '') {
        throw new Invalid('credentials in the URL are not accepted; use --xapi-user and --xapi-password-file');
      }
      return raw;
    },
  },
  'a string',
);

export function enumKind(values: readonly string[]): Kind {
  return viaString(
    {
      describe: values.join('|'),
      fromString(raw) {
        if (!values.includes(raw)) throw new Invalid(`expected one of ${values.join(', ')}, got ${quote(raw)}`);
        return raw;
      },
    },
    `one of ${values.join(', ')}`,
  );
}

export function stringKind(describe: string, options: { nonEmpty?: boolean; nullable?: boolean; noSpace?: boolean; safeId?: boolean } = {}): Kind {
  return viaString(
    {
      describe,
      fromString(raw) {
        if (raw.includes('\0')) throw new Invalid('contains a NUL byte');
        if (options.nonEmpty === true && raw === '') throw new Invalid('must not be empty');
        if (options.noSpace === true && /\s/.test(raw)) throw new Invalid(`${quote(raw)} must not contain white space`);
        if (options.nullable === true && raw === '') return null;
        // Written into OVSDB and logged: the reconciler's own rule for ids (length, printable characters).
        if (options.safeId === true && !isSafeId(raw)) throw new Invalid(`${quoteForLog(raw)} is not a safe id (1..${MAX_ID_LENGTH} printable characters)`);
        return raw;
      },
    },
    'a string',
    options.nullable === true,
  );
}

export const boolKind: Kind = {
  describe: 'true|false',
  fromString(raw) {
    const v = raw.trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(v)) return true;
    if (['false', 'no', 'off', '0'].includes(v)) return false;
    throw new Invalid(`expected true or false, got ${quote(raw)}`);
  },
  fromJson(value) {
    if (typeof value !== 'boolean') throw new Invalid(`expected a boolean, got ${typeOf(value)}`);
    return value;
  },
};

export function intKind(min: number, max: number, note = ''): Kind {
  const check = (n: number): number => {
    if (!Number.isSafeInteger(n)) throw new Invalid(`expected an integer, got ${n}`);
    if (n < min || n > max) throw new Invalid(`${n} is out of range ${min}-${max}${note}`);
    return n;
  };
  return {
    describe: 'N',
    fromString(raw) {
      if (!/^-?[0-9]+$/.test(raw.trim())) throw new Invalid(`expected an integer, got ${quote(raw)}`);
      return check(Number(raw.trim()));
    },
    fromJson(value) {
      if (typeof value !== 'number') throw new Invalid(`expected a number, got ${typeOf(value)}`);
      return check(value);
    },
  };
}

/** Owned field names (`MANAGED_KEYS`) in canonical order without repeats; unknown or no names are refused. */
function managedKeyList(names: readonly string[]): ManagedKey[] {
  const known: readonly string[] = MANAGED_KEYS;
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new Invalid(`unknown key ${unknown.map(quote).join(', ')} (known keys: ${MANAGED_KEYS.join(', ')})`);
  }
  if (names.length === 0) throw new Invalid('names no key; list at least one (dryRun is the way to write nothing)');
  return MANAGED_KEYS.filter((key) => names.includes(key));
}

/** A JSON array of key names; in the environment, names separated by commas. */
export const managedKeysKind: Kind = {
  describe: 'KEY[,KEY...]',
  fromString(raw) {
    return managedKeyList(
      raw
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== ''),
    );
  },
  fromJson(value) {
    if (!Array.isArray(value)) throw new Invalid(`expected an array of key names, got ${typeOf(value)}`);
    const names: string[] = [];
    for (const item of value as unknown[]) {
      if (typeof item !== 'string') throw new Invalid(`expected an array of key names, got an array holding ${typeOf(item)}`);
      names.push(item);
    }
    return managedKeyList(names);
  },
};

/** `ADDR:PORT`, `[v6]:PORT` or `off`. Port 0 asks the OS for a free port (tests). */
export function parseHealthAddress(raw: string): HealthAddress | null {
  if (raw === 'off') return null;
  let host: string;
  let portText: string;
  if (raw.startsWith('[')) {
    const close = raw.indexOf(']');
    if (close < 0) throw new Invalid(`${quote(raw)}: unterminated "[" in IPv6 address`);
    host = raw.slice(1, close);
    if (isIP(host) !== 6) throw new Invalid(`"${host}" is not an IPv6 address`);
    if (raw[close + 1] !== ':') throw new Invalid(`${quote(raw)}: missing ":PORT" after the IPv6 address`);
    portText = raw.slice(close + 2);
  } else {
    const colon = raw.lastIndexOf(':');
    if (colon < 0) throw new Invalid(`expected ADDR:PORT, [IPv6]:PORT or off, got ${quote(raw)}`);
    host = raw.slice(0, colon);
    portText = raw.slice(colon + 1);
    if (host.includes(':')) throw new Invalid(`an IPv6 address must be written in brackets, e.g. [::1]:${DEFAULT_HEALTH_PORT}`);
    if (isIP(host) !== 4 && host !== 'localhost') throw new Invalid(`"${host}" is not an IPv4 address (or [IPv6], localhost)`);
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new Invalid(`port ${quote(portText)} is not a number in 0-65535`);
  }
  return { host, port: Number(portText) };
}

export const healthKind: Kind = viaString(
  { describe: 'ADDR:PORT|off', fromString: (raw) => parseHealthAddress(raw) },
  'a string ("ADDR:PORT" or "off")',
);

/** OVS resolves a relative pidfile or control socket name against the run directory (lib/daemon-unix.c). */
function inRundir(path: string, ctx: Ctx): string {
  return isAbsolute(path) ? path : join(ctx.rundir, path);
}

export const defaultUnixctl = (ctx: Ctx): string => join(ctx.rundir, `${PROGRAM_NAME}.${ctx.pid}.ctl`);

/** A socket path; `null` in the file (or "" in the environment) means the default pid-based name. */
export const unixctlKind: Kind = {
  describe: 'PATH',
  fromString(raw, ctx) {
    if (raw === '') return defaultUnixctl(ctx);
    if (raw.includes('\0')) throw new Invalid('contains a NUL byte');
    return inRundir(raw, ctx);
  },
  fromJson(value, ctx) {
    if (value === null) return defaultUnixctl(ctx);
    if (typeof value !== 'string') throw new Invalid(`expected a string or null, got ${typeOf(value)}`);
    return unixctlKind.fromString(value, ctx);
  },
};

/** `--pidfile` alone (or `true`, or "") means `$OVS_RUNDIR/ovs-xapi-sync.pid`; `false`/`off` means none. */
export const pidfileKind: Kind = {
  describe: '[=FILE]',
  fromString(raw, ctx) {
    const v = raw.trim().toLowerCase();
    if (raw === '' || ['true', 'yes', 'on'].includes(v)) return join(ctx.rundir, `${PROGRAM_NAME}.pid`);
    if (['false', 'no', 'off'].includes(v)) return null;
    if (raw.includes('\0')) throw new Invalid('contains a NUL byte');
    return inRundir(raw, ctx);
  },
  fromJson(value, ctx) {
    if (value === true) return join(ctx.rundir, `${PROGRAM_NAME}.pid`);
    if (value === false || value === null) return null;
    if (typeof value !== 'string' || value === '') throw new Invalid(`expected a boolean or a path, got ${typeOf(value)}`);
    return pidfileKind.fromString(value, ctx);
  },
};
