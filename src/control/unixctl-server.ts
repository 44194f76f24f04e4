import { chmodSync, lstatSync, mkdtempSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { CodedError, describeError } from '../errors.js';
import { JsonMessageSplitter } from '../ovsdb/framing.js';
import type { CommandRegistry } from './commands.js';

/**
 * The ovs-appctl control socket (docs/ovsdb.md §6): JSON-RPC 1.0 over a unix socket with OVSDB's
 * concatenated-JSON framing. Requests are `{"id","method","params":[strings]}`; a success reply is
 * `{"id","result":BODY,"error":null}`, a failure `{"id","error":BODY}` without `result` (captured from
 * ovsdb-server 3.1). Requests on one connection are answered in order; any message that is not a
 * request closes the connection (lib/unixctl.c `run_connection`).
 */

export interface UnixctlServerOptions {
  /** Absolute socket path, e.g. `$OVS_RUNDIR/ovs-xapi-sync.<pid>.ctl`. */
  readonly path: string;
  readonly registry: CommandRegistry;
  readonly logger: Logger;
  /** Cap on one request (default 1 MiB): ovs-appctl sends a command line, never more. */
  readonly maxMessageBytes?: number;
  /** A connection idle this long is closed (default 5 minutes). */
  readonly idleTimeoutMs?: number;
}

const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

export class ControlSocketError extends CodedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONTROL_SOCKET', message, options);
  }
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Resolves true when something accepts connections on `path`. */
function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      resolve(false);
    });
  });
}

export class UnixctlServer {
  readonly path: string;
  private readonly registry: CommandRegistry;
  private readonly logger: Logger;
  private readonly maxMessageBytes: number;
  private readonly idleTimeoutMs: number;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Inode of the socket file we created, so `close` never removes a successor's socket. */
  private inode: number | undefined;

  constructor(options: UnixctlServerOptions) {
    this.path = options.path;
    this.registry = options.registry;
    this.logger = options.logger;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
  }

  /**
   * Creates the socket with mode 0600. A stale socket file (nobody listening) is replaced; a live
   * one, or a path that is not a socket, is refused with `ControlSocketError`.
   *
   * The socket is bound inside a fresh 0700 directory, chmod'ed, then renamed into place, so it is
   * never reachable by other users with the umask's looser mode, not even briefly (Node has no
   * fchmod-before-bind as OVS's `make_unix_socket` does).
   */
  async start(): Promise<void> {
    if (this.server !== undefined) throw new ControlSocketError('control socket already started');
    await this.clearStale();
    const dir = dirname(this.path);
    let tmpDir: string;
    try {
      tmpDir = mkdtempSync(join(dir, `.${basename(this.path)}.`));
    } catch (err) {
      throw new ControlSocketError(`cannot create control socket ${this.path}: ${describeError(err)}`, { cause: err });
    }
    const tmpPath = join(tmpDir, 's');
    const server = createServer((socket) => {
      this.serve(socket);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path: tmpPath }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      chmodSync(tmpPath, 0o600);
      renameSync(tmpPath, this.path);
      this.inode = lstatSync(this.path).ino;
    } catch (err) {
      server.close();
      throw new ControlSocketError(`cannot create control socket ${this.path}: ${describeError(err)}`, { cause: err });
    } finally {
      try {
        rmdirSync(tmpDir);
      } catch {
        // Already gone or not empty after a failure: nothing a caller can act on.
      }
    }
    server.on('error', (err) => {
      this.logger.error({ err }, 'control socket error');
    });
    this.server = server;
    this.logger.info({ path: this.path }, 'control socket listening');
  }

  /**
   * Stops accepting, closes open connections and removes the socket file. Idempotent. Replies already
   * written are flushed (`end`), so an `exit` handler may start shutdown right after it returns (from a
   * `setImmediate`, once its reply is written); a client that does not close within 1 s is dropped.
   */
  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const s of this.sockets) s.end();
    const force = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, 1000);
    force.unref();
    await new Promise<void>((resolve) => server.close(() => {
      resolve();
    }));
    clearTimeout(force);
    this.sockets.clear();
    try {
      if (this.inode !== undefined && lstatSync(this.path).ino === this.inode) unlinkSync(this.path);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') this.logger.warn({ err, path: this.path }, 'cannot remove control socket');
    }
    this.inode = undefined;
  }

  private async clearStale(): Promise<void> {
    let isSocket: boolean;
    try {
      isSocket = lstatSync(this.path).isSocket();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw new ControlSocketError(`cannot inspect ${this.path}: ${describeError(err)}`, { cause: err });
    }
    if (!isSocket) throw new ControlSocketError(`${this.path} exists and is not a socket; refusing to replace it`);
    if (await isLive(this.path)) {
      throw new ControlSocketError(`control socket ${this.path} is in use by another process`);
    }
    try {
      unlinkSync(this.path);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') {
        throw new ControlSocketError(`cannot remove stale control socket ${this.path}: ${describeError(err)}`, { cause: err });
      }
    }
    this.logger.info({ path: this.path }, 'replaced a stale control socket');
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    const splitter = new JsonMessageSplitter({ maxMessageBytes: this.maxMessageBytes, maxDepth: 64 });
    let queue: Promise<void> = Promise.resolve();
    socket.setTimeout(this.idleTimeoutMs, () => socket.destroy());
    socket.on('error', (err) => {
      this.logger.debug({ err }, 'control connection error');
    });
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      let messages: Record<string, unknown>[];
      try {
        messages = splitter.push(chunk);
      } catch (err) {
        this.logger.debug({ err }, 'malformed control request; closing the connection');
        socket.destroy();
        return;
      }
      for (const msg of messages) {
        const id = msg.id;
        const method = msg.method;
        const params = msg.params;
        if (typeof method !== 'string' || !Array.isArray(params) || id === undefined || id === null) {
          // Not a JSON-RPC 1.0 request (a notification, a reply, garbage): OVS closes the connection.
          this.logger.debug('unexpected message on the control socket; closing the connection');
          queue = queue.then(() => {
            socket.destroy();
          });
          return;
        }
        queue = queue.then(() => this.answer(socket, id, method, params));
      }
    });
  }

  private async answer(socket: Socket, id: unknown, method: string, params: unknown[]): Promise<void> {
    this.logger.debug({ command: method, argCount: params.length }, 'control command');
    const result = await this.registry.dispatch(method, params);
    const reply = result.ok ? { id, result: result.body, error: null } : { id, error: result.body };
    if (!socket.destroyed && socket.writable) socket.write(JSON.stringify(reply));
  }
}
