import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';

/**
 * systemd notify protocol (sd_notify(3); docs/platform.md §2): newline-separated `KEY=VALUE`
 * datagrams to the unix datagram socket named by `NOTIFY_SOCKET`. Node cannot send unix datagrams
 * (`dgram` has no `unix_dgram`, `net` is stream-only), so this uses the `unix-dgram` addon, loaded
 * lazily: a host without systemd, or a build without the addon, degrades to no-ops.
 *
 * Limits, on purpose: abstract (`@…`) socket addresses are not supported by the addon (it copies the
 * path with strncpy), so they are a warned no-op; systemd 219's system manager uses a filesystem path.
 * With `NotifyAccess=main` only this process may send, which is why the messages are not delegated
 * to a `systemd-notify` child (racy on 219: "Cannot find unit for notify message").
 */

/** The slice of the `unix-dgram` addon this module uses. */
export interface UnixDgramSocket {
  on(event: 'error', listener: (err: Error) => void): unknown;
  send(buf: Buffer, offset: number, length: number, path: string, callback: (err?: Error) => void): void;
  close(): void;
}
export interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

export interface SystemdNotifierOptions {
  readonly logger: Logger;
  /** Environment to read `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID` from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** This process's pid, compared with `WATCHDOG_PID` (default `process.pid`). */
  readonly pid?: number;
  /** Loads the addon (default: `require('unix-dgram')` via createRequire). Tests inject failures. */
  readonly loadAddon?: () => UnixDgramModule;
}

export interface WatchdogHandle {
  /** Ping period in ms (half of `WATCHDOG_USEC`). */
  readonly intervalMs: number;
  stop(): void;
}

const requireFromHere = createRequire(import.meta.url);
const defaultLoadAddon = (): UnixDgramModule => requireFromHere('unix-dgram') as UnixDgramModule;

type Transport = { readonly kind: 'off' } | { readonly kind: 'on'; readonly socket: UnixDgramSocket; readonly path: string };

export class SystemdNotifier {
  private readonly logger: Logger;
  private readonly env: Readonly<Record<string, string | undefined>>;
  private readonly pid: number;
  private readonly loadAddon: () => UnixDgramModule;
  private transport: Transport | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private sendFailureLogged = false;
  private watchdogHeld = false;

  constructor(options: SystemdNotifierOptions) {
    this.logger = options.logger;
    this.env = options.env ?? process.env;
    this.pid = options.pid ?? process.pid;
    this.loadAddon = options.loadAddon ?? defaultLoadAddon;
  }

  /** True when messages actually go somewhere (NOTIFY_SOCKET set, usable, addon loaded). */
  get enabled(): boolean {
    return this.open().kind === 'on';
  }

  /** `READY=1` (optionally with a status line): start-up is complete. Send after the health listener is bound. */
  ready(status?: string): void {
    this.send(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${oneLine(status)}`);
  }

  /** `STATUS=…`: free text shown by `systemctl status`. */
  status(line: string): void {
    this.send(`STATUS=${oneLine(line)}`);
  }

  /** `STOPPING=1`: shutdown has begun. */
  stopping(status?: string): void {
    this.send(status === undefined ? 'STOPPING=1' : `STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  /** One `WATCHDOG=1` keep-alive ping. */
  watchdog(): void {
    this.send('WATCHDOG=1');
  }

  /**
   * The watchdog interval this process must honour, or undefined when systemd asked for none or asked
   * another process (sd_watchdog_enabled(3): `WATCHDOG_PID`, when set, must equal our pid).
   */
  watchdogIntervalMs(): number | undefined {
    const usecText = this.env.WATCHDOG_USEC;
    if (usecText === undefined || !/^[0-9]+$/.test(usecText)) return undefined;
    const usec = Number(usecText);
    if (!Number.isSafeInteger(usec) || usec <= 0) return undefined;
    const pidText = this.env.WATCHDOG_PID;
    if (pidText !== undefined && pidText !== '' && pidText !== String(this.pid)) return undefined;
    return Math.max(1, Math.floor(usec / 2 / 1000));
  }

  /**
   * Pings every `WATCHDOG_USEC/2` while `isProgressing()` returns true. A wedged sync loop therefore
   * stops the pings and systemd restarts us; a bare interval would only prove the event loop runs.
   * Returns undefined (and does nothing) when no watchdog applies to this process or notify is off.
   * A second call replaces the first.
   */
  startWatchdog(isProgressing: () => boolean): WatchdogHandle | undefined {
    this.stopWatchdog();
    const intervalMs = this.watchdogIntervalMs();
    if (intervalMs === undefined || !this.enabled) return undefined;
    const ping = (): void => {
      let progressing: boolean;
      try {
        progressing = isProgressing();
      } catch (err) {
        this.logger.warn({ err: describeError(err) }, 'systemd: progress check threw; treating as stalled');
        progressing = false;
      }
      if (progressing) {
        if (this.watchdogHeld) this.logger.info('systemd: sync loop progressing again; watchdog pings resumed');
        this.watchdogHeld = false;
        this.watchdog();
      } else if (!this.watchdogHeld) {
        this.watchdogHeld = true;
        this.logger.warn('systemd: sync loop not progressing; withholding watchdog pings');
      }
    };
    ping();
    const timer = setInterval(ping, intervalMs);
    timer.unref();
    this.watchdogTimer = timer;
    this.logger.debug({ intervalMs }, 'systemd: watchdog pings started');
    return {
      intervalMs,
      stop: () => {
        if (this.watchdogTimer === timer) this.stopWatchdog();
      },
    };
  }

  /** Stops the watchdog and releases the socket. Further calls are no-ops until the next message reopens it. */
  close(): void {
    this.stopWatchdog();
    if (this.transport?.kind === 'on') {
      try {
        this.transport.socket.close();
      } catch {
        // Closing an already-closed fd: nothing left to release.
      }
    }
    this.transport = undefined;
  }

  private stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }

  private send(message: string): void {
    const transport = this.open();
    if (transport.kind === 'off') return;
    const buf = Buffer.from(message, 'utf8');
    try {
      transport.socket.send(buf, 0, buf.length, transport.path, (err) => {
        if (err) this.sendFailed(err);
      });
    } catch (err) {
      this.sendFailed(err);
    }
  }

  private sendFailed(err: unknown): void {
    // Logged once at warn: a missing or full notify socket repeats every ping.
    const level = this.sendFailureLogged ? 'debug' : 'warn';
    this.sendFailureLogged = true;
    this.logger[level]({ err: describeError(err) }, 'systemd: notify message not delivered');
  }

  private open(): Transport {
    if (this.transport) return this.transport;
    const path = this.env.NOTIFY_SOCKET;
    if (path === undefined || path === '') {
      this.logger.debug('systemd: NOTIFY_SOCKET not set; notify calls are no-ops');
      return (this.transport = { kind: 'off' });
    }
    if (path.startsWith('@')) {
      this.logger.warn({ path }, 'systemd: abstract NOTIFY_SOCKET not supported; notify calls are no-ops');
      return (this.transport = { kind: 'off' });
    }
    try {
      const socket = this.loadAddon().createSocket('unix_dgram');
      socket.on('error', (err) => {
        this.sendFailed(err);
      });
      this.logger.debug({ path }, 'systemd: notify socket ready');
      return (this.transport = { kind: 'on', socket, path });
    } catch (err) {
      this.logger.debug({ err: describeError(err) }, 'systemd: unix-dgram addon unavailable; notify calls are no-ops');
      return (this.transport = { kind: 'off' });
    }
  }
}

/** A STATUS value is one line: a newline would start a new `KEY=VALUE` assignment (sd_notify(3)). */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
