import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { OvsdbClient } from '../../../src/ovsdb/client.js';
import { OvsdbConnection } from '../../../src/ovsdb/connection.js';
import { OvsdbError, OvsdbRpcError } from '../../../src/ovsdb/errors.js';
import { parseRemote } from '../../../src/ovsdb/remote.js';
import { capturingLogger, silent, waitFor } from './helpers.js';

/**
 * A misbehaving peer: a plain `net` server on a unix socket that sends whatever the test scripts. It is
 * not a stand-in for ovsdb-server (the client tests use the real one); it produces the faults a real
 * server cannot be made to produce.
 */
interface Peer {
  readonly remote: string;
  readonly connections: Socket[];
  /** Everything each connection received from the client, as text. */
  readonly received: string[];
  onConnection: (socket: Socket, index: number) => void;
}

let dir: string;
let server: Server;
let peer: Peer;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ovsdb-peer-'));
  const path = join(dir, 'peer.sock');
  peer = { remote: `unix:${path}`, connections: [], received: [], onConnection: () => undefined };
  server = createServer((socket) => {
    const index = peer.connections.length;
    peer.connections.push(socket);
    peer.received.push('');
    socket.on('data', (d) => {
      peer.received[index] = (peer.received[index] ?? '') + d.toString('utf8');
    });
    socket.on('error', () => undefined);
    peer.onConnection(socket, index);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
});

afterEach(async () => {
  for (const s of peer.connections) s.destroy();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

async function connect(options: { maxMessageBytes?: number; requestTimeoutMs?: number; probeIntervalMs?: number } = {}) {
  return OvsdbConnection.connect(parseRemote(peer.remote), { logger: silent, probeIntervalMs: 0, ...options });
}

/** Sends `reply(request)` for every request the client sends on this socket. */
function answer(socket: Socket, reply: (req: { id: unknown; method: string; params: unknown }) => string | undefined): void {
  let buffer = '';
  socket.on('data', (d) => {
    buffer += d.toString('utf8');
    // Client requests are single-line objects without nested braces in strings here: split on "}{".
    for (;;) {
      let depth = 0;
      let end = -1;
      for (let i = 0; i < buffer.length; i++) {
        if (buffer[i] === '{') depth++;
        else if (buffer[i] === '}' && --depth === 0) {
          end = i;
          break;
        }
      }
      if (end < 0) return;
      const req = JSON.parse(buffer.slice(0, end + 1));
      buffer = buffer.slice(end + 1);
      const out = reply(req);
      if (out !== undefined) socket.write(out);
    }
  });
}

describe('connection against a misbehaving peer', () => {
  test.each([
    ['garbage', 'hello, this is not JSON', 'OVSDB_PROTOCOL'],
    ['a JSON array (batch)', '[{"id":1,"result":{},"error":null}]', 'OVSDB_PROTOCOL'],
    ['malformed JSON inside an object', '{"id":1,"result":}', 'OVSDB_PROTOCOL'],
  ])('%s → pending request rejected, connection closed with a typed reason', async (_name, bytes, code) => {
    peer.onConnection = (socket) => {
      answer(socket, () => bytes);
    };
    const conn = await connect();
    const err = await conn.request('list_dbs', []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvsdbError);
    expect((err as OvsdbError).code).toBe('OVSDB_CONNECTION_CLOSED');
    expect(((err as OvsdbError).cause as OvsdbError).code).toBe(code);
    expect((await conn.closed).code).toBe(code);
    expect(conn.isOpen).toBe(false);
  });

  test('truncated frame then close → OVSDB_CONNECTION_CLOSED', async () => {
    peer.onConnection = (socket) => {
      answer(socket, () => {
        socket.end('{"id":1,"result":["Open_vS');
        return undefined;
      });
    };
    const conn = await connect();
    await expect(conn.request('list_dbs', [])).rejects.toMatchObject({ code: 'OVSDB_CONNECTION_CLOSED' });
    expect((await conn.closed).code).toBe('OVSDB_CONNECTION_CLOSED');
  });

  test('oversized frame → OVSDB_MESSAGE_TOO_LARGE, even before it is complete', async () => {
    peer.onConnection = (socket) => {
      answer(socket, (req) => `{"id":${JSON.stringify(req.id)},"result":["${'x'.repeat(5000)}`);
    };
    const conn = await connect({ maxMessageBytes: 1024 });
    const err = await conn.request('list_dbs', []).catch((e: unknown) => e);
    expect(((err as OvsdbError).cause as OvsdbError).code).toBe('OVSDB_MESSAGE_TOO_LARGE');
  });

  test('error reply (result absent) → OvsdbRpcError; request ids; never a jsonrpc member', async () => {
    peer.onConnection = (socket) => {
      answer(socket, (req) => `{"id":${JSON.stringify(req.id)},"error":"unknown method"}`);
    };
    const conn = await connect();
    const err = await conn.request('frob', ['a']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvsdbRpcError);
    expect((err as OvsdbRpcError).errorString).toBe('unknown method');
    expect(conn.isOpen).toBe(true);
    const sent = JSON.parse(peer.received[0]!);
    expect(sent).toEqual({ method: 'frob', params: ['a'], id: 1 });
    conn.close();
  });

  test('server echo is answered with its params; an unknown-method request gets no reply; connection stays up', async () => {
    peer.onConnection = (socket) => {
      socket.write('{"id":7,"method":"frobnicate","params":[]}{"id":"echo","method":"echo","params":["x",1]}');
    };
    const conn = await connect();
    await waitFor('echo reply', () => peer.received[0]!.length > 0);
    // A sleep on purpose: the point is that no reply to the unknown method follows the echo reply.
    await new Promise((r) => setTimeout(r, 50));
    expect(JSON.parse(peer.received[0]!)).toEqual({ id: 'echo', result: ['x', 1], error: null });
    expect(conn.isOpen).toBe(true);
    conn.close();
  });

  test('request timeout → OVSDB_TIMEOUT, connection kept; our probe drops a silent peer', async () => {
    const conn = await connect({ requestTimeoutMs: 100 });
    await expect(conn.request('list_dbs', [])).rejects.toMatchObject({ code: 'OVSDB_TIMEOUT' });
    expect(conn.isOpen).toBe(true);
    conn.close();

    const probed = await connect({ probeIntervalMs: 100 });
    const reason = await probed.closed;
    expect(reason.code).toBe('OVSDB_TIMEOUT');
    const probe = JSON.parse(peer.received[1]!);
    expect(probe).toMatchObject({ method: 'echo' });
    expect(probe).not.toHaveProperty('jsonrpc');
  });
});

describe('client against a misbehaving peer', () => {
  test('garbage on every connection: reconnect attempts with backoff, one warn line, no crash, close() is clean', async () => {
    peer.onConnection = (socket) => {
      answer(socket, () => 'garbage!');
    };
    const { logger, lines } = capturingLogger();
    const client = new OvsdbClient({ remote: peer.remote, logger, backoff: { initialMs: 5, maxMs: 20, factor: 2, jitter: 0.5 } });
    client.start();
    await waitFor('several attempts', () => peer.connections.length >= 4, 5000);
    expect(client.replica.ready).toBe(false);
    expect(client.state).not.toBe('monitoring');
    await client.close();
    expect(client.state).toBe('disconnected');
    const warnings = lines.filter((l) => (l.level as number) >= 40);
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.msg)).toContain('OVSDB_PROTOCOL');
    const seen = peer.connections.length;
    // A sleep on purpose: the point is that no attempt follows close() (the backoff is at most 20 ms).
    await new Promise((r) => setTimeout(r, 60));
    expect(peer.connections.length).toBe(seen);
  });

  test('an inconsistent update forces a reconnect and a full resync', async () => {
    const row = (name: string) => ({ initial: { name, external_ids: ['map', [['k', name]]] } });
    peer.onConnection = (socket, index) => {
      answer(socket, (req) => {
        if (req.method !== 'monitor_cond_since') return undefined;
        const rows: Record<string, unknown> =
          index === 0
            ? { 'aaaaaaaa-0000-0000-0000-000000000001': row('a'), 'aaaaaaaa-0000-0000-0000-000000000002': row('b') }
            : { 'aaaaaaaa-0000-0000-0000-000000000001': row('a') };
        const reply = JSON.stringify({ id: req.id, result: [false, '00000000-0000-0000-0000-000000000000', { Interface: rows }], error: null });
        // First connection: a modify of a row we do not have, in the same write as the reply.
        const bad = JSON.stringify({
          id: null,
          method: 'update3',
          params: ['ovs-xapi-sync', '00000000-0000-0000-0000-000000000000', { Interface: { 'bbbbbbbb-0000-0000-0000-000000000009': { modify: { name: 'x' } } } }],
        });
        return index === 0 ? reply + bad : reply;
      });
    };
    const client = new OvsdbClient({ remote: peer.remote, logger: silent, backoff: { initialMs: 5, maxMs: 20, factor: 2, jitter: 0 } });
    const deletedNames: string[] = [];
    client.on('change', (c) => {
      for (const ch of c.tables.get('Interface')?.values() ?? []) if (ch.kind === 'deleted') deletedNames.push(ch.old.name as string);
    });
    client.start();
    await waitFor('second connection monitoring', () => peer.connections.length >= 2 && client.replica.ready, 5000);
    expect([...client.replica.table('Interface')!.keys()]).toEqual(['aaaaaaaa-0000-0000-0000-000000000001']);
    expect(deletedNames).toEqual(['b']);
    expect(client.counters.reconnects).toBe(1);
    await client.close();
  });
});
