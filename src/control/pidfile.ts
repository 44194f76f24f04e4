import { closeSync, fstatSync, fsyncSync, linkSync, lstatSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { CodedError, describeError } from '../errors.js';

/**
 * An OVS-compatible pidfile: `ovs-appctl -t NAME` reads `$OVS_RUNDIR/NAME.pid` and accepts it only if a
 * POSIX `fcntl` write lock (F_WRLCK, whole file) is held on it by the pid written in it
 * (docs/ovsdb.md §6: lib/daemon-unix.c `read_pidfile__`). A `flock(2)` lock is invisible to
 * F_GETLK, so Node needs an addon: `fs-ext`'s asynchronous `fcntl(fd, 'setlk', F_WRLCK, cb)` sets
 * `{l_type: F_WRLCK, l_whence: SEEK_SET, l_start: 0, l_len: 0}`, i.e. the whole file. Its
 * `fcntlSync` must NOT be used for locks: fs-ext 2.1.1 passes the int argument where `struct flock *`
 * is expected and fails with EFAULT (verified here; fs-ext.cc `NAN_METHOD(Fcntl)`).
 *
 * Creation follows OVS's Python daemon (python/ovs/daemon.py `_make_pidfile`): write and lock a temp
 * file, then `link` it into place; on EEXIST, a pidfile whose lock is free is stale and replaced, a
 * locked one means another instance is running.
 *
 * POSIX record locks belong to the process and are released when ANY descriptor of the file is
 * closed by it: so the descriptor stays open for the process lifetime, nothing else in the process
 * may open and close the pidfile, and one process can hold only one pidfile per path.
 */

/** `code` is `PIDFILE_LOCKED` (another instance holds the lock), `PIDFILE_NO_LOCKING` (no addon) or `PIDFILE` (I/O). */
export class PidfileError extends CodedError {}

/** Takes a non-blocking whole-file write lock on `fd`; rejects with an errno error (EAGAIN/EACCES when held). */
export type WriteLockFn = (fd: number) => Promise<void>;

interface FsExt {
  fcntl(fd: number, cmd: 'setlk', arg: number, callback: (err: Error | null) => void): void;
  constants: { F_WRLCK: number };
}

let fsExt: FsExt | undefined;

/** The default lock: `fcntl(fd, F_SETLK, {F_WRLCK, whole file})` via the `fs-ext` addon, loaded lazily. */
export const fcntlWriteLock: WriteLockFn = (fd) => {
  if (fsExt === undefined) {
    try {
      fsExt = createRequire(import.meta.url)('fs-ext') as FsExt;
    } catch (err) {
      return Promise.reject(
        new PidfileError('PIDFILE_NO_LOCKING', `the fs-ext addon (fcntl locking) cannot be loaded: ${describeError(err)}`, { cause: err }),
      );
    }
  }
  const ext = fsExt;
  return new Promise<void>((resolve, reject) => {
    ext.fcntl(fd, 'setlk', ext.constants.F_WRLCK, (err) => {
      if (err) reject(err);
      else resolve();
    });
  });
};

export interface Pidfile {
  readonly path: string;
  readonly pid: number;
  /** Removes the pidfile (if it is still ours), then releases the lock. Idempotent. */
  close(): void;
}

export interface CreatePidfileOptions {
  readonly path: string;
  readonly pid: number;
  readonly lock?: WriteLockFn;
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isLockConflict(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'EAGAIN' || code === 'EACCES' || code === 'EWOULDBLOCK';
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // ENOENT or a vanished directory: nothing left to remove.
  }
}

/**
 * Checks an existing pidfile: returns the pid that holds its lock, or `undefined` if it is stale (its
 * lock is free; the file is then removed).
 */
async function holderOrRemoveStale(path: string, lock: WriteLockFn): Promise<number | undefined> {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new PidfileError('PIDFILE', `cannot open existing pidfile ${path}: ${describeError(err)}`, { cause: err });
  }
  try {
    try {
      await lock(fd);
    } catch (err) {
      if (!isLockConflict(err)) throw err;
      const text = readFileSync(path, 'utf8').trim();
      const pid = /^[0-9]+$/.test(text) ? Number(text) : -1;
      return pid;
    }
    // We got the lock: nobody holds it, so the file is stale. Remove it while we still hold the lock.
    unlinkQuietly(path);
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates, locks and publishes the pidfile. Throws `PidfileError` `PIDFILE_LOCKED` when another live
 * process holds it (a second instance), `PIDFILE` for I/O or addon failures.
 */
export async function createPidfile(options: CreatePidfileOptions): Promise<Pidfile> {
  const { path, pid } = options;
  const lock = options.lock ?? fcntlWriteLock;
  const tmp = `${path}.tmp${pid}`;
  unlinkQuietly(tmp);
  let fd: number;
  try {
    fd = openSync(tmp, 'w', 0o644);
  } catch (err) {
    throw new PidfileError('PIDFILE', `cannot create pidfile ${tmp}: ${describeError(err)}`, { cause: err });
  }
  const fail = (err: PidfileError): never => {
    unlinkQuietly(tmp);
    closeSync(fd);
    throw err;
  };
  try {
    await lock(fd);
    writeSync(fd, `${pid}\n`);
    fsyncSync(fd);
  } catch (err) {
    fail(err instanceof PidfileError ? err : new PidfileError('PIDFILE', `cannot lock pidfile ${tmp}: ${describeError(err)}`, { cause: err }));
  }
  for (let attempt = 0; ; attempt++) {
    try {
      linkSync(tmp, path);
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST' || attempt >= 3) {
        fail(new PidfileError('PIDFILE', `cannot create pidfile ${path}: ${describeError(err)}`, { cause: err }));
      }
    }
    let holder: number | undefined;
    try {
      holder = await holderOrRemoveStale(path, lock);
    } catch (err) {
      fail(err instanceof PidfileError ? err : new PidfileError('PIDFILE', `cannot check pidfile ${path}: ${describeError(err)}`, { cause: err }));
    }
    if (holder !== undefined) {
      const who = holder > 0 ? `pid ${holder}` : 'another process';
      fail(new PidfileError('PIDFILE_LOCKED', `pidfile ${path} is locked by ${who}: ovs-xapi-sync is already running`));
    }
  }
  unlinkQuietly(tmp);
  const ino = fstatSync(fd).ino;
  let open = true;
  return {
    path,
    pid,
    close() {
      if (!open) return;
      open = false;
      // Remove before unlocking, so no reader ever sees our file unlocked. Only remove our own inode.
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        // Already removed by an operator: nothing to do.
      }
      closeSync(fd);
    },
  };
}

/**
 * The daemon's pidfile at `path`. When fcntl locking is unavailable the daemon runs on without one
 * (synchronising matters more than the name form of ovs-appctl): that is logged, with what is lost, and
 * the result is undefined. Any other failure throws (a second instance holds the lock, say).
 */
export async function takeDaemonPidfile(path: string, pid: number, controlSocket: string, log: Logger): Promise<Pidfile | undefined> {
  try {
    return await createPidfile({ path, pid });
  } catch (err) {
    if (!(err instanceof PidfileError && err.code === 'PIDFILE_NO_LOCKING')) throw err;
    log.error(
      { err: describeError(err), controlSocket },
      'no pidfile: fcntl locking is unavailable, so `ovs-appctl -t ovs-xapi-sync` will not find this daemon; use `ovs-appctl -t <control socket>`',
    );
    return undefined;
  }
}
