#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeError } from '../errors.js';
import { parseFixture, parseGenerateSpec, type Fixture } from './fixture.js';
import { startSimulator, type SimulatorOptions } from './simulator.js';

/* The `xapi-sim` entry point. Its own process: it may print to stdout and call process.exit. */

const USAGE = `usage: xapi-sim [--listen HOST:PORT] [--unix PATH] [--fixture FILE | --generate VMS:VIFS[:HOSTS]]
                [--control HOST:PORT] [--latency MS] [--event-delay MS] [--user U --password P]
                [--login-failure-delay MS] [--pool-this-host INDEX]
A XAPI simulator (XML-RPC at / and /RPC2, JSON-RPC at /jsonrpc). Prints one line per listener,
then a JSON line with the urls, and runs until SIGTERM/SIGINT. --pool-this-host serves every host
of the fixture at 127.0.0.(2+i) on one port (host 0 is the master); this host is INDEX.`;

function hostPort(flag: string, v: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(v);
  if (m === null) throw new Error(`${flag}: expected HOST:PORT, got ${JSON.stringify(v)}`);
  return { host: (m[1] ?? '').replace(/^\[(.*)\]$/, '$1') || '127.0.0.1', port: Number(m[2]) };
}

function nonNegative(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        listen: { type: 'string' },
        unix: { type: 'string' },
        fixture: { type: 'string' },
        generate: { type: 'string' },
        control: { type: 'string' },
        latency: { type: 'string' },
        'event-delay': { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        'login-failure-delay': { type: 'string' },
        'pool-this-host': { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`xapi-sim: ${describeError(err)}\n${USAGE}\n`);
    process.exit(2);
  }
  if (args.help === true) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  let options: SimulatorOptions;
  try {
    if (args.fixture !== undefined && args.generate !== undefined) throw new Error('--fixture and --generate are exclusive');
    let fixture: Fixture | undefined;
    if (args.fixture !== undefined) fixture = parseFixture(JSON.parse(readFileSync(args.fixture, 'utf8')));
    options = {
      listen: args.listen !== undefined ? hostPort('--listen', args.listen) : undefined,
      unix: args.unix,
      fixture,
      generate: args.generate !== undefined ? parseGenerateSpec(args.generate) : undefined,
      controlListen: args.control !== undefined ? hostPort('--control', args.control) : undefined,
      eventDelayMs: args['event-delay'] !== undefined ? nonNegative('--event-delay', args['event-delay']) : undefined,
      credentials: args.user !== undefined ? { user: args.user, password: args.password ?? '' } : undefined,
      loginFailureDelayMs: args['login-failure-delay'] !== undefined ? nonNegative('--login-failure-delay', args['login-failure-delay']) : undefined,
      pool: args['pool-this-host'] !== undefined ? { thisHost: nonNegative('--pool-this-host', args['pool-this-host']) } : undefined,
    };
  } catch (err) {
    process.stderr.write(`xapi-sim: ${describeError(err)}\n`);
    process.exit(2);
  }
  const sim = await startSimulator(options);
  if (args.latency !== undefined) await sim.faults.set({ latencyMs: nonNegative('--latency', args.latency) });
  if (sim.url !== undefined) process.stdout.write(`xapi-sim: listening on ${sim.url}\n`);
  if (sim.unixPath !== undefined) process.stdout.write(`xapi-sim: listening on unix:${sim.unixPath}\n`);
  if (sim.controlUrl !== undefined) process.stdout.write(`xapi-sim: control on ${sim.controlUrl}\n`);
  const pool = sim.pool === undefined ? null : { masterUrl: sim.pool.masterUrl, hosts: sim.state.all('host').map((h) => ({ uuid: h.uuid, url: sim.pool?.hostUrl(h.ref) })) };
  process.stdout.write(`${JSON.stringify({ url: sim.url ?? null, unix: sim.unixPath ?? null, control: sim.controlUrl ?? null, thisHost: sim.thisHost.uuid, pool })}\n`);
  const stop = (): void => {
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`xapi-sim: ${describeError(err)}\n`);
  process.exit(1);
});
