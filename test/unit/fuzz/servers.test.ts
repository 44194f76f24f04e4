/**
 * Issue 8 item 6, the byte-facing endpoints over real sockets: the OVSDB connection against a
 * misbehaving server peer, the ovs-appctl control socket and the health endpoint against misbehaving
 * clients. Random and mutated input may only produce typed errors or clean refusals: nothing uncaught,
 * the servers still answer a valid request afterwards, and the heap stays bounded.
 */
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CommandRegistry } from '../../../src/control/commands.js';
import { UnixctlServer } from '../../../src/control/unixctl-server.js';
import { CodedError } from '../../../src/errors.js';
import { startHealthServer, type HealthServer } from '../../../src/health/server.js';
import { OvsdbConnection } from '../../../src/ovsdb/connection.js';
import { OvsdbError } from '../../../src/ovsdb/errors.js';

const logger = pino({ level: 'silent' });
const RUNS = 60;

/** Structural tokens spliced into valid messages. */
const token = fc.constantFrom('{', '}', '[', ']', '"', '\\', ':', ',', '\r\n', '\r\n\r\n', '\u0000', '\uD800', 'null', '1e999', '{"id":', '"method":', '"params":[', 'Content-Length: 99999999\r\n', 'Transfer-Encoding: chunked\r\n', ' HTTP/1.1', '%00', '../');

function mutate(valid: fc.Arbitrary<string>): fc.Arbitrary<Buffer> {
  return fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.oneof(token, fc.constant('')), fc.boolean()), { maxLength: 5 })).map(([s, edits]) => {
    let out = s;
    for (const [at0, text, cut] of edits) {
      const at = at0 % (out.length + 1);
      out = cut ? out.slice(0, at) + text : out.slice(0, at) + text + out.slice(at);
    }
    return Buffer.from(out, 'utf8');
  });
}

const fuzzBytes = (valid: fc.Arbitrary<string>): fc.Arbitrary<Buffer> => fc.oneof(fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)), mutate(valid));

/** Every exception or rejection nobody handled while a test ran. */
const uncaught: unknown[] = [];
const onUncaught = (err: unknown): void => {
  uncaught.push(err);
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oxs-fuzz-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  uncaught.length = 0;
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
});
afterEach(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  expect(uncaught.map(String)).toEqual([]);
});

/** Writes `bytes` to a fresh connection to `where`, then collects the answer until close or `ms`. */
function poke(where: { path: string } | { port: number; host: string }, bytes: Buffer, ms = 150): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(where as never);
    let got = '';
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', done);
    s.on('close', done);
    s.on('connect', () => {
      s.write(bytes, () => undefined);
    });
  });
}

function heapMiB(): number {
  return process.memoryUsage().heapUsed / 2 ** 20;
}

describe('OvsdbConnection against a fuzzing server peer', () => {
  let server: Server;
  let path: string;
  let script: Buffer = Buffer.alloc(0);
  let closeAfter = false;
  const peers = new Set<Socket>();

  beforeAll(async () => {
    path = join(dir, 'ovsdb.sock');
    server = createServer((s: Socket) => {
      peers.add(s);
      s.on('close', () => peers.delete(s));
      s.on('error', () => undefined);
      s.write(script);
      if (closeAfter) s.end();
    });
    await new Promise<void>((r) => server.listen(path, r));
  });
  afterAll(async () => {
    for (const s of peers) s.destroy();
    await new Promise<void>((r) => server.close(() => { r(); }));
  });

  const valid = fc.oneof(
    fc.constant('{"id":1,"result":[{"count":1}],"error":null}'),
    fc.constant('{"id":"echo","method":"echo","params":[]}'),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ id: null, method: 'update2', params: [null, v] })),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ id: 1, error: v, result: null })),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ id: 1, result: v })),
    fc.constant('{"id":1,"method":"lock","params":["x"]}'),
  ).map((m) => m.repeat(2));

  it('answers its caller or rejects with an OvsdbError, and never throws out of band', async () => {
    const heapBefore = heapMiB();
    await fc.assert(
      fc.asyncProperty(fuzzBytes(valid), fc.boolean(), async (bytes, close) => {
        script = bytes;
        closeAfter = close;
        const conn = await OvsdbConnection.connect({ kind: 'unix', path } as never, { logger, probeIntervalMs: 0, requestTimeoutMs: 300, maxMessageBytes: 4096 });
        conn.onNotification(() => undefined);
        try {
          await conn.request('transact', ['Open_vSwitch']);
        } catch (err) {
          if (!(err instanceof OvsdbError)) throw new Error(`untyped rejection: ${String(err)}`, { cause: err });
        } finally {
          conn.close();
        }
        const reason = await conn.closed;
        expect(reason).toBeInstanceOf(OvsdbError);
      }),
      { numRuns: RUNS },
    );
    expect(heapMiB() - heapBefore).toBeLessThan(100);
  }, 60_000);
});

describe('the control socket against fuzzing clients', () => {
  let control: UnixctlServer;
  let path: string;

  beforeAll(async () => {
    path = join(dir, 'ctl.sock');
    const registry = new CommandRegistry({ programName: 'ovs-xapi-sync', version: '9.9.9' });
    registry.register('echo', 'ARG...', 0, 3, (args) => args.join(' '));
    control = new UnixctlServer({ path, registry, logger, maxMessageBytes: 64 * 1024 });
    await control.start();
  });
  afterAll(async () => {
    await control.close();
  });

  const valid = fc.tuple(fc.oneof(fc.constantFrom('version', 'echo', 'list-commands', 'exit', ''), fc.string()), fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })).map(([method, params, id]) => JSON.stringify({ id, method, params }));

  it('answers or closes the connection, and still serves a valid request afterwards', async () => {
    const heapBefore = heapMiB();
    await fc.assert(
      fc.asyncProperty(fuzzBytes(valid), async (bytes) => {
        await poke({ path }, bytes, 100);
      }),
      { numRuns: RUNS },
    );
    const reply = await poke({ path }, Buffer.from('{"id":7,"method":"echo","params":["still","here"]}'), 1000);
    expect(JSON.parse(reply)).toEqual({ id: 7, result: 'still here\n', error: null });
    expect(heapMiB() - heapBefore).toBeLessThan(100);
  }, 60_000);

  it('drops a request larger than its cap instead of buffering it', async () => {
    const reply = await poke({ path }, Buffer.from(`{"id":1,"method":"echo","params":["${'a'.repeat(200 * 1024)}"]}`), 1000);
    expect(reply).toBe('');
  });
});

describe('the health endpoint against fuzzing clients', () => {
  let health: HealthServer;

  beforeAll(async () => {
    health = await startHealthServer({ host: '127.0.0.1', port: 0, logger, checks: { x: () => ({ ok: true, detail: 'fine' }) } });
  });
  afterAll(async () => {
    await health.close();
  });

  const valid = fc
    .tuple(
      fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'OPTIONS', 'BREW', 'G E T'),
      fc.constantFrom('/livez', '/healthz', '/readyz', '/metrics', '/', '/readyz?verbose', '//x', '/%ff', '*', 'http://evil/readyz'),
      fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9'),
      fc.array(fc.tuple(fc.constantFrom('Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Expect', 'X-A'), fc.string({ maxLength: 20 })), { maxLength: 4 }),
      fc.string({ maxLength: 50 }),
    )
    .map(([m, p, v, headers, body]) => `${m} ${p} ${v}\r\n${headers.map(([k, val]) => `${k}: ${val}\r\n`).join('')}\r\n${body}`);

  it('answers or closes the connection, and still serves /livez afterwards', async () => {
    const heapBefore = heapMiB();
    const { port } = health.address;
    await fc.assert(
      fc.asyncProperty(fuzzBytes(valid), async (bytes) => {
        const answer = await poke({ host: '127.0.0.1', port }, bytes, 100);
        // Whatever came back is HTTP, never a stack trace.
        if (answer !== '') expect(answer).toMatch(/^HTTP\/1\.[01] \d{3} /);
        expect(answer).not.toMatch(/at .*\.js:\d+/);
      }),
      { numRuns: RUNS },
    );
    expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
    expect(heapMiB() - heapBefore).toBeLessThan(100);
  }, 60_000);

  it('refuses an oversized header block with 431', async () => {
    const { port } = health.address;
    const answer = await poke({ host: '127.0.0.1', port }, Buffer.from(`GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`), 1000);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
  });
});

it('error classes used above are CodedErrors', () => {
  expect(new OvsdbError('OVSDB_PROTOCOL', 'x')).toBeInstanceOf(CodedError);
});
