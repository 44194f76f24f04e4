import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { CodedError, describeError } from '../errors.js';
import { runCheck, runChecks, type Check, type CheckResult } from './checks.js';
import { http } from '../node-builtins.js';
import { EventLoopLagProbe, type EventLoopLagProbeOptions } from './liveness.js';
import type { Metrics } from './metrics.js';

/**
 * HTTP/1.1 health endpoint (docs/design.md §5, docs/platform.md §5):
 *   GET /livez, /healthz  200 {"status":"ok"} while the event loop is responsive and the sync loop makes
 *                         progress; else 503 {"status":"unhealthy","checks":{…}}.
 *   GET /readyz           200 when every readiness check passes; else 503
 *                         {"status":"not ready","checks":{name:{ok,detail}}}, every check listed.
 *   GET /metrics          Prometheus text exposition (when a Metrics instance is given).
 * HEAD is accepted wherever GET is. Probes only run synchronous checks over state the components
 * already hold, so they answer within milliseconds even while a peer is slow.
 */

export interface HealthServerLimits {
  /**
   * A request's head must arrive within this from the moment the connection waits for it (accepted, or
   * its previous response sent); else 408 and close (slowloris bound; default 5000 ms). Requests carry no
   * body (413), so the head is the whole request.
   */
  readonly headersTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this (default 5000 ms). */
  readonly keepAliveTimeoutMs?: number;
  /** Any socket idle this long is destroyed (default 30 000 ms). */
  readonly socketTimeoutMs?: number;
  /** Maximum request header bytes; larger requests get 431 (default 8192). */
  readonly maxHeaderSize?: number;
  /** Concurrent connections; Node closes any beyond this at once (default 64). */
  readonly maxConnections?: number;
}

export interface HealthServerOptions {
  /** Bind address; the caller passes loopback (127.0.0.1) unless configured otherwise. */
  readonly host: string;
  /** TCP port; 0 picks an ephemeral one (tests). */
  readonly port: number;
  readonly logger: Logger;
  /** Readiness checks by name (more can be added later with `setCheck`). */
  readonly checks?: Readonly<Record<string, Check>>;
  /** Liveness: has the sync loop made progress recently? (e.g. `ProgressTracker.check`). */
  readonly progress?: Check;
  /** Event loop lag probe settings, or a probe owned by the caller. */
  readonly eventLoop?: EventLoopLagProbeOptions | EventLoopLagProbe;
  readonly metrics?: Metrics;
  readonly limits?: HealthServerLimits;
}

export interface HealthServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: { readonly host: string; readonly port: number };
  /** Adds or replaces a readiness check. */
  setCheck(name: string, check: Check): void;
  /** Stops listening, closes idle connections at once and busy ones after a short grace. */
  close(): Promise<void>;
}

const ALLOW = 'GET, HEAD';
/** The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days). */
const TIMER_MAX_MS = 2_147_483_647;
const CLOSE_GRACE_MS = 1000;

type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { logger } = options;
  const limits = options.limits ?? {};
  const checks = new Map<string, Check>(Object.entries(options.checks ?? {}));
  const recordLag = options.metrics?.recordEventLoopLag;
  const probe =
    options.eventLoop instanceof EventLoopLagProbe
      ? options.eventLoop
      : new EventLoopLagProbe({ ...options.eventLoop, ...(recordLag !== undefined ? { onLag: recordLag } : {}) });
  const ownsProbe = !(options.eventLoop instanceof EventLoopLagProbe);

  const liveness: Route = (req, res) => {
    const results: Record<string, CheckResult> = { event_loop: probe.check() };
    if (options.progress) results.progress = runCheck(options.progress);
    const ok = Object.values(results).every((r) => r.ok);
    if (ok) sendJson(req, res, 200, { status: 'ok' });
    else sendJson(req, res, 503, { status: 'unhealthy', checks: results });
  };

  const evaluateReadiness = (): { ok: boolean; results: Record<string, CheckResult> } => {
    const results = runChecks(checks);
    options.metrics?.setReadiness(results);
    return { ok: Object.values(results).every((r) => r.ok), results };
  };

  const readiness: Route = (req, res) => {
    const { ok, results } = evaluateReadiness();
    sendJson(req, res, ok ? 200 : 503, { status: ok ? 'ok' : 'not ready', checks: results });
  };

  const metricsRoute: Route = async (req, res) => {
    const metrics = options.metrics;
    if (!metrics) {
      sendJson(req, res, 404, { status: 'not found' });
      return;
    }
    evaluateReadiness();
    const { contentType, body } = await metrics.render();
    send(req, res, 200, contentType, body);
  };

  const routes = new Map<string, Route>([
    ['/livez', liveness],
    ['/healthz', liveness],
    ['/readyz', readiness],
    ['/metrics', metricsRoute],
  ]);

  // Node enforces its own headersTimeout/requestTimeout with a sweep timer that runs every
  // connectionsCheckingInterval for as long as the server listens, connections or not: a wake-up a second
  // of an idle daemon (docs/platform.md §7). Both are off here, the sweep is pushed to the longest period a
  // timer takes, and `requestDeadlines` bounds slowloris with a timer per connection that exists only while
  // that connection waits for a request.
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderSize ?? 8192,
      headersTimeout: 0,
      requestTimeout: 0,
      keepAliveTimeout: limits.keepAliveTimeoutMs ?? 5000,
      connectionsCheckingInterval: TIMER_MAX_MS,
    },
    (req, res) => {
      deadlines.requestArrived(req.socket, res);
      void handle(req, res);
    },
  );
  server.maxConnections = limits.maxConnections ?? 64;
  server.setTimeout(limits.socketTimeoutMs ?? 30_000);
  const deadlines = requestDeadlines(limits.headersTimeoutMs ?? 5000, (socket) => {
    logger.debug('health: request head not received in time');
    if (socket.writable) socket.end(`HTTP/1.1 408 ${http.STATUS_CODES[408] ?? ''}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroySoon();
  });
  server.on('connection', deadlines.connected);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const route = routes.get(pathOf(req.url));
      if (!route) {
        sendJson(req, res, 404, { status: 'not found' });
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', ALLOW);
        sendJson(req, res, 405, { status: 'method not allowed' });
        return;
      }
      if (hasBody(req)) {
        // Probes carry no body; refuse instead of reading one, and do not reuse a connection whose
        // remaining bytes we never parsed.
        res.setHeader('Connection', 'close');
        sendJson(req, res, 413, { status: 'request body not accepted' });
        return;
      }
      await route(req, res);
    } catch (err) {
      logger.warn({ err: describeError(err), path: pathOf(req.url) }, 'health: request handler failed');
      if (!res.headersSent) sendJson(req, res, 500, { status: 'internal error' });
      else res.destroy();
    }
  }

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    logger.debug({ code: err.code, err: err.message }, 'health: malformed or timed-out request');
    // A response already started on this socket (e.g. bytes after a `Connection: close` request):
    // an extra status line would corrupt the stream, so just drop the connection, as Node does.
    const active = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || active?.headersSent === true) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(
        new CodedError('HEALTH_LISTEN', `health endpoint cannot listen on ${options.host}:${options.port}: ${err.message}`, {
          cause: err,
        }),
      );
    };
    server.once('error', onError);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => {
    logger.warn({ err: describeError(err) }, 'health: server error');
  });

  probe.start();
  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  logger.info(address, 'health endpoint listening');

  let closing: Promise<void> | undefined;
  return {
    address,
    setCheck(name, check) {
      checks.set(name, check);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (ownsProbe) probe.stop();
        const grace = setTimeout(() => {
          server.closeAllConnections();
        }, CLOSE_GRACE_MS);
        grace.unref();
        server.close(() => {
          clearTimeout(grace);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/**
 * A deadline per connection for its next request head: armed when the connection is accepted and again
 * when a response has been sent on it (keep-alive), cleared when a request arrives or the socket closes.
 */
function requestDeadlines(timeoutMs: number, onExpired: (socket: Socket) => void): {
  connected: (socket: Socket) => void;
  requestArrived: (socket: Socket, res: ServerResponse) => void;
} {
  const timers = new Map<Socket, NodeJS.Timeout>();
  const clear = (socket: Socket): void => {
    clearTimeout(timers.get(socket));
    timers.delete(socket);
  };
  const arm = (socket: Socket): void => {
    clear(socket);
    if (socket.destroyed) return;
    timers.set(
      socket,
      setTimeout(() => {
        timers.delete(socket);
        onExpired(socket);
      }, timeoutMs).unref(),
    );
  };
  return {
    connected: (socket) => {
      socket.once('close', () => {
        clear(socket);
      });
      arm(socket);
    },
    requestArrived: (socket, res) => {
      clear(socket);
      res.once('finish', () => {
        arm(socket);
      });
    },
  };
}

/** The path of a request-target, without query; origin-form only (RFC 9112 §3.2). */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  send(req, res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string): void {
  const payload = Buffer.from(body, 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', payload.length);
  if (req.method === 'HEAD') res.end();
  else res.end(payload);
}
