import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../../src/sim/index.js';
import { xmlRpcCodec } from '../../../src/xapi/codec/xmlrpc.js';
import { post } from './rpc-helper.js';

const run = promisify(execFile);
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ generate: { vms: 2, vifsPerVm: 2, hosts: 1 } });
});
afterAll(async () => {
  await sim.close();
});

/** Python's standard xmlrpc.client, as XenAPI.py uses it, decodes what the simulator emits. */
const PY = `
import json, sys, xmlrpc.client
p = xmlrpc.client.ServerProxy(sys.argv[1])
login = p.session.login_with_password("root", "", "1.0", "fidelity")
s = login["Value"]
vifs = p.VIF.get_all(s)["Value"]
rec = p.VIF.get_record(s, vifs[0])["Value"]
err = p.VM.get_by_uuid(s, "no-such-uuid")
ev = p.event.__getattr__("from")(s, ["vif"], "", 1.0)["Value"]
print(json.dumps({"login": login, "rec": rec, "err": err, "counts": ev["valid_ref_counts"], "n": len(ev["events"])}))
`;

it('Python xmlrpc.client decodes login, a VIF record and an error', async () => {
  const { stdout } = await run('python3', ['-c', PY, `${sim.url!}/`]);
  const out = JSON.parse(stdout);
  expect(out.login.Status).toBe('Success');
  expect(out.login.Value).toMatch(/^OpaqueRef:/);
  // Bare <value> decodes as str in Python too: MTU (an API int) arrives as "1500".
  expect(out.rec).toMatchObject({ device: '0', MTU: '1500', currently_attached: true, other_config: {}, ipv4_allowed: [] });
  expect(out.err).toStrictEqual({ Status: 'Failure', ErrorDescription: ['UUID_INVALID', 'VM', 'no-such-uuid'] });
  // valid_ref_counts are <i4>, so Python sees ints.
  expect(out.counts.vif).toBe(4);
  expect(out.n).toBe(4);
});

it('raw replies carry no <string> tags and no whitespace, like rpclib', async () => {
  const login = await post({ url: sim.url! }, '/', xmlRpcCodec.encodeCall('session.login_with_password', ['', ''], 0));
  const s = xmlRpcCodec.decodeResponse(login.body, 'login') as string;
  const vifs = xmlRpcCodec.decodeResponse((await post({ url: sim.url! }, '/', xmlRpcCodec.encodeCall('VIF.get_all', [s], 0))).body, 'x') as string[];
  const rec = await post({ url: sim.url! }, '/', xmlRpcCodec.encodeCall('VIF.get_record', [s, vifs[0]!], 0));
  for (const body of [login.body, rec.body]) {
    expect(body.startsWith('<?xml version="1.0"?><methodResponse>')).toBe(true);
    expect(body).not.toContain('<string>');
    expect(body).not.toMatch(/>\s+</);
  }
  expect(rec.body).toContain('<member><name>MTU</name><value>1500</value></member>');
  expect(rec.body).toContain('<member><name>currently_attached</name><value><boolean>1</boolean></value></member>');
});
