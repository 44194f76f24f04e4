/**
 * Issue 8 item 7: SIGTERM while a large transaction (the cold-start pass over thousands of interfaces)
 * is in flight. A transparent relay between the daemon and the real ovsdb-server makes "in flight"
 * certain: it passes the daemon's bytes through but holds every byte the server sends once the daemon's
 * first transaction went by, so no reply can arrive before the signal. The daemon must exit 0 within 5 s;
 * the pass is written as pipelined transactions of `DEFAULT_ROWS_PER_TRANSACTION` rows (docs/ovsdb.md §7),
 * each all or nothing (OVSDB transactions are atomic), committed in the order sent (one session's
 * requests are handled in order), so the rows that hold the write are a prefix of the pass's row order;
 * a restarted daemon converges.
 */
import { randomUUID } from 'node:crypto';
import { renameSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ROWS_PER_TRANSACTION } from '../../../src/sync/engine.js';
import { startHostEnv, type HostEnv } from '../../helpers/host-env.js';
import { snapshotView, waitConverged, waitReady } from './support.js';

const PORTS = 2000;

interface Relay {
  readonly path: string;
  /** Resolves when the daemon's first `transact` request passed through. */
  readonly transactSeen: Promise<number>;
  /** Server → daemon bytes held back since then. */
  held(): number;
  close(): Promise<void>;
}

/**
 * Listens on `path` and relays each connection to `target`. The first connection that sends the
 * daemon's transaction (recognised by its `comment` operation, which comes last, so the whole request
 * has passed) gets nothing more from the server: its reply is held back.
 */
function startRelay(path: string, target: string): Promise<Relay> {
  let seen!: (bytes: number) => void;
  const transactSeen = new Promise<number>((r) => (seen = r));
  let triggered = false;
  let heldBytes = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ path: target });
    sockets.add(client).add(upstream);
    let clientBytes = 0;
    let tail = '';
    let holding = false;
    client.on('data', (chunk: Buffer) => {
      clientBytes += chunk.length;
      upstream.write(chunk);
      tail = (tail + chunk.toString('latin1')).slice(-chunk.length - 64);
      if (!triggered && tail.includes('Updating records from XAPI')) {
        triggered = true;
        holding = true;
        seen(clientBytes);
      }
      tail = tail.slice(-64);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (holding) heldBytes += chunk.length;
      else client.write(chunk);
    });
    // The daemon's request goes through whole even when it hangs up right after.
    client.on('end', () => upstream.end());
    client.on('error', () => upstream.end());
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(path, () => {
      resolve({
        path,
        transactSeen,
        held: () => heldBytes,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => { r(); });
          }),
      });
    });
  });
}

describe('shutdown during a large transaction', () => {
  let env: HostEnv;
  let relay: Relay;

  beforeAll(async () => {
    env = await startHostEnv({ vms: 1, vifsPerVm: 1 });
    // XAPI unreachable: every port gets the default ids at once (docs/design.md §3 "unknown"), in one pass.
    await env.sim.faults.set({ down: true });
    await env.db.vsctl('add-br', 'xenbr-big');
    // Ports the hotplug script would have plugged, for VIFs XAPI does not know: each gets the default ids.
    for (let batch = 0; batch < PORTS / 500; batch++) {
      const args: string[] = [];
      for (let i = batch * 500; i < (batch + 1) * 500; i++) {
        const name = `vif${1000 + Math.floor(i / 8)}.${i % 8}`;
        args.push('--', 'add-port', 'xenbr-big', name, '--', 'set', 'Interface', name, `external_ids:xs-vif-uuid=${randomUUID()}`, `external_ids:xs-vm-uuid=${randomUUID()}`, 'external_ids:foreign=1');
      }
      await env.db.vsctl(...args);
    }
    // The relay takes the server's socket path (the daemon's DATABASE); the server keeps listening on
    // its renamed socket file.
    const real = join(env.db.dir, 'db.real.sock');
    renameSync(env.db.socketPath, real);
    relay = await startRelay(env.db.socketPath, real);
  });

  afterAll(async () => {
    await relay.close();
    await env.close();
  });

  it('exits 0 within 5 s, leaves each transaction all or nothing and the committed ones in order, and a restart converges', async () => {
    const daemon = env.startDaemon({ logLevel: 'info' });
    const bytes = await Promise.race([
      relay.transactSeen,
      daemon.exited.then((e) => {
        throw new Error(`daemon exited early (${String(e.code)}): ${daemon.stderr()} ${daemon.stdout().slice(-2000)}`);
      }),
      new Promise<never>((_r, rej) => setTimeout(() => { rej(new Error(`no transact within 30 s; logs: ${daemon.stdout().slice(-3000)}`)); }, 30_000)),
    ]);
    expect(bytes).toBeGreaterThan(DEFAULT_ROWS_PER_TRANSACTION * 100);
    const status = await daemon.stop('SIGTERM');
    console.log(`SIGTERM with a ${PORTS}-row transaction in flight (${relay.held()} reply bytes held): exit ${String(status.code)} in ${status.ms} ms`);
    expect(status.code).toBe(0);
    expect(status.ms).toBeLessThan(5000);
    expect(daemon.logs.some((l) => l.msg === 'stopped' || /grace period/.test(l.msg ?? ''))).toBe(true);

    // Each transaction all or nothing, committed in order: in the pass's row order (by uuid), the rows
    // holding an owned key come first and none after the first row without it (the pass may have run
    // before XAPI was judged down, in which case it wrote only iface-status and left the ids pending).
    const view = await snapshotView(env.db);
    const ports = [...view.interfaces.values()].filter((r) => r.name.startsWith('vif')).sort((a, b) => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0));
    expect(ports).toHaveLength(PORTS);
    const counts = Object.fromEntries(['iface-status', 'iface-id', 'vm-id'].map((k) => [k, ports.filter((r) => r.externalIds.has(k)).length]));
    console.log(`rows holding each owned key after the interrupted write: ${JSON.stringify(counts)} of ${PORTS}`);
    for (const [key, n] of Object.entries(counts)) expect(ports.slice(0, n).every((r) => r.externalIds.has(key))).toBe(true);
    expect(ports.filter((r) => r.externalIds.has('iface-id') && r.externalIds.get('iface-id') !== r.externalIds.get('xs-vif-uuid'))).toEqual([]);
    expect(ports.every((r) => r.externalIds.get('foreign') === '1')).toBe(true);

    // XAPI comes back; a new daemon, straight on the server, converges.
    await env.sim.faults.set({ down: false });
    const again = env.startDaemon({ logLevel: 'info' });
    await waitReady(again, 30_000);
    await waitConverged(env, 10_000);
    const stop = await again.stop('SIGTERM');
    expect(stop.code).toBe(0);
  }, 90_000);
});
