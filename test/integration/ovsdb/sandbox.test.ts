import { existsSync } from 'node:fs';
import { expect, test } from 'vitest';
import { startOvsdbSandbox } from '../../../src/sandbox/ovsdb-server.js';

test('missing Open vSwitch tools → OVSDB_SANDBOX with an install hint', async () => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    await expect(startOvsdbSandbox()).rejects.toMatchObject({ code: 'OVSDB_SANDBOX', message: expect.stringMatching(/apt-get install openvswitch-switch/) });
  } finally {
    process.env.PATH = saved;
  }
});

test('stop() kills the server and removes the temp dir; restart keeps the database', async () => {
  const sb = await startOvsdbSandbox();
  await sb.vsctl('add-br', 'brx');
  const firstPid = sb.pid;
  await sb.restart();
  expect(sb.pid).not.toBe(firstPid);
  expect(await sb.vsctl('list-br')).toBe('brx');
  expect(await sb.appctl('version')).toMatch(/ovsdb-server \(Open vSwitch\)/);
  await sb.stop();
  expect(sb.running).toBe(false);
  expect(existsSync(sb.dir)).toBe(false);
});
