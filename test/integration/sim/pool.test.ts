import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import { jsonResult, jsonRpc, post } from './rpc-helper.js';

/*
 * Pool-member mode: one simulator serves every host of a pool, each at its own loopback address on
 * one port. A member answers a TCP login with HOST_IS_SLAVE [master address]
 * (xen-api ocaml/xapi/xapi_session.ml:996-1003); on its unix socket it logs in locally and forwards
 * the rest to the master (ocaml/xapi/api_server.ml:53-62).
 */
const fixture = {
  hosts: [{ hostname: 'master' }, { hostname: 'member1', uuid: '11111111-1111-4111-8111-111111111111' }, { hostname: 'member2' }],
  networks: [{ bridge: 'xenbr0' }],
  vms: [
    { resident_on: 0, vifs: [{ device: '0', network: 'xenbr0' }] },
    { resident_on: 1, vifs: [{ device: '0', network: 'xenbr0' }] },
  ],
};

let sim: Simulator | undefined;
let dir: string | undefined;
afterEach(async () => {
  await sim?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  sim = undefined;
  dir = undefined;
});

async function start(): Promise<Simulator> {
  dir = mkdtempSync(join(tmpdir(), 'xapi-sim-pool-'));
  sim = await startSimulator({ fixture, pool: { thisHost: 1 }, unix: join(dir, 'xapi'), eventDelayMs: 1, credentials: { user: 'root', password: 'pw' }, loginFailureDelayMs: 0 });
  return sim;
}

async function jsonError(target: { url?: string; socketPath?: string }, method: string, params: unknown[]): Promise<unknown> {
  return (await jsonRpc(target, method, params)).body.error;
}

describe('pool-member mode', () => {
  it('this host is a member with its own uuid: over TCP it redirects to the master’s address', async () => {
    const s = await start();
    expect(s.thisHost.uuid).toBe('11111111-1111-4111-8111-111111111111');
    const master = new URL(s.pool!.masterUrl);
    const member = new URL(s.url!);
    expect(member.port).toBe(master.port);
    expect(member.hostname).not.toBe(master.hostname);
    expect(await jsonError({ url: s.url! }, 'session.login_with_password', ['root', 'pw'])).toStrictEqual(['HOST_IS_SLAVE', master.hostname]);
    // Following the redirect by hostname (as clients do) reaches the master on the same port.
    const redirected = new URL(s.url!);
    redirected.hostname = master.hostname;
    const session = (await jsonResult({ url: redirected.toString() }, 'session.login_with_password', ['root', 'pw'])) as string;
    // this_host is the host that processed the login: the master, not this member.
    const masterRef = s.state.all('pool')[0]!.fields.master;
    expect(await jsonResult({ url: redirected.toString() }, 'session.get_this_host', [session, session])).toBe(masterRef);
    expect(await jsonResult({ url: redirected.toString() }, 'host.get_by_uuid', [session, s.thisHost.uuid])).toBe(s.thisHost.ref);
    // Every other call on the member's TCP endpoint is refused the same way.
    expect(await jsonError({ url: s.url! }, 'VM.get_all', [session])).toStrictEqual(['HOST_IS_SLAVE', master.hostname]);
    // host.address is the endpoint's address.
    expect(await jsonResult({ url: redirected.toString() }, 'host.get_address', [session, s.thisHost.ref])).toBe(member.hostname);
  });

  it('on the member’s unix socket: any credentials, this_host is the member, answers re-encoded as forwarded', async () => {
    const s = await start();
    const socket = { socketPath: s.unixPath! };
    const session = (await jsonResult(socket, 'session.login_with_password', ['', ''])) as string;
    expect(await jsonResult(socket, 'session.get_this_host', [session, session])).toBe(s.thisHost.ref);
    // XML-RPC: the master's <i4> comes back as a bare value (the member's parser read it as Rpc.Int).
    const xml = await post(socket, '/', `<?xml version="1.0"?><methodCall><methodName>event.from</methodName><params><param><value>${session}</value></param><param><value><array><data><value>vm</value></data></array></value></param><param><value></value></param><param><value><double>1</double></value></param></params></methodCall>`);
    expect(xml.body).toContain('<member><name>vm</name><value>5</value></member>');
    expect(xml.body).not.toContain('<i4>');
    // JSON-RPC V2: a forwarded failure keeps the array form, with the request id.
    const failed = await jsonRpc(socket, 'VM.get_record', [session, 'OpaqueRef:gone'], { version: '2.0', id: 42 });
    expect(failed.body).toStrictEqual({ jsonrpc: '2.0', error: ['HANDLE_INVALID', 'VM', 'OpaqueRef:gone'], id: 42 });
  });

  it('failover: the master dies, a member is promoted, the old addresses redirect to the new master', async () => {
    const s = await start();
    const pool = s.pool!;
    const oldMaster = pool.masterUrl;
    const member2 = pool.hostUrl(2);
    await pool.setHostDown(0, true);
    await expect(post({ url: oldMaster }, '/jsonrpc', '{}', 'application/json')).rejects.toThrow();
    // While the master is down, members still answer with its (dead) address.
    expect(await jsonError({ url: s.url! }, 'session.login_with_password', ['root', 'pw'])).toStrictEqual(['HOST_IS_SLAVE', new URL(oldMaster).hostname]);
    pool.promote(2);
    expect(pool.masterUrl).toBe(member2);
    const newMasterHost = new URL(member2).hostname;
    expect(await jsonError({ url: s.url! }, 'session.login_with_password', ['root', 'pw'])).toStrictEqual(['HOST_IS_SLAVE', newMasterHost]);
    expect(await jsonResult({ url: member2 }, 'session.login_with_password', ['root', 'pw'])).toMatch(/^OpaqueRef:/);
    await pool.setHostDown(0, false);
    expect(await jsonError({ url: oldMaster }, 'session.login_with_password', ['root', 'pw'])).toStrictEqual(['HOST_IS_SLAVE', newMasterHost]);
  });

  it('a TCP login on the master needs the password', async () => {
    const s = await start();
    expect(await jsonError({ url: s.pool!.masterUrl }, 'session.login_with_password', ['root', 'nope'])).toStrictEqual(['SESSION_AUTHENTICATION_FAILED', 'root', 'Authentication failure']);
  });
});
