/**
 * `npm run demo`: a whole host in a temp dir (a private ovsdb-server, the XAPI simulator, the daemon
 * from dist/cli.js), driven the way the hotplug scripts, xcp-networkd and an operator drive a real
 * one, printing what the database holds after each step. The entry point is run.ts.
 */
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { CodedError, describeError } from '../errors.js';
import { DEFAULT_SCHEMA } from '../sandbox/ovsdb-server.js';
import { CLI, startHostEnv, waitFor, type Daemon, type HostEnv, type LocalVif, type LogLine } from '../sandbox/host.js';
import { codecFor } from '../xapi/codec/index.js';
import { XapiSession } from '../xapi/session.js';
import { createHttpTransport, parseXapiUrl } from '../xapi/transport.js';
import { abbreviate, EMPTY_SNAPSHOT, readSnapshot, render, type Paint, type Snapshot } from './table.js';

export interface DemoOptions {
  /** Keep the temp dir (daemon log, root prefix, ovsdb-server log) even on success. */
  readonly keep: boolean;
  /** No reading pauses between steps. */
  readonly fast: boolean;
  readonly color: boolean;
}

export const USAGE = `usage: node dist/demo/run.js [--keep] [--fast] [--no-color]
  --keep       keep the temp dir (daemon log, root prefix, ovsdb-server log) and print its path
  --fast       no pauses between steps
  --no-color   plain output (colour is used only when stdout is a terminal)`;

/** Parses the demo's argv; a string is a usage error to print. */
export function parseDemoArgs(argv: readonly string[], isTty: boolean): DemoOptions | { help: true } | string {
  let keep = false;
  let fast = false;
  let color = isTty;
  for (const arg of argv) {
    if (arg === '--keep') keep = true;
    else if (arg === '--fast') fast = true;
    else if (arg === '--no-color') color = false;
    else if (arg === '--help' || arg === '-h') return { help: true };
    else return `unknown option ${arg}\n${USAGE}`;
  }
  return { keep, fast, color };
}

/** The Open vSwitch programs the demo runs; Debian puts ovsdb-server in /usr/sbin, outside a user's PATH. */
const TOOLS = ['ovsdb-server', 'ovsdb-tool', 'ovs-vsctl', 'ovs-appctl'] as const;
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
export const INSTALL_HINT = 'sudo apt-get install openvswitch-switch';

function executableIn(dir: string, name: string): boolean {
  try {
    accessSync(join(dir, name), fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the Open vSwitch programs and the schema. `path` is the PATH to give child processes: the
 * caller's, plus the sbin directories when a program is only found there.
 */
export function findPrerequisites(
  pathEnv: string,
  fallbackDirs: readonly string[] = SBIN_DIRS,
  schema: string = DEFAULT_SCHEMA,
): { readonly missing: readonly string[]; readonly path: string } {
  const dirs = pathEnv.split(delimiter).filter((d) => d !== '');
  const extra: string[] = [];
  const missing: string[] = [];
  for (const tool of TOOLS) {
    if (dirs.some((d) => executableIn(d, tool)) || extra.some((d) => executableIn(d, tool))) continue;
    const sbin = fallbackDirs.find((d) => executableIn(d, tool));
    if (sbin === undefined) missing.push(tool);
    else extra.push(sbin);
  }
  if (!existsSync(schema)) missing.push(schema);
  return { missing, path: [...dirs, ...extra].join(delimiter) };
}

const ESC = '\u001b[';
const sgr = (code: string) => (text: string) => `${ESC}${code}m${text}${ESC}0m`;
const PLAIN = (text: string): string => text;

interface Style extends Paint {
  readonly step: (text: string) => string;
  readonly ok: (text: string) => string;
  readonly fail: (text: string) => string;
}

function styleFor(color: boolean): Style {
  if (!color) return { changed: PLAIN, heading: PLAIN, dim: PLAIN, step: PLAIN, ok: PLAIN, fail: PLAIN };
  return { changed: sgr('1;32'), heading: sgr('1'), dim: sgr('2'), step: sgr('1;36'), ok: sgr('32'), fail: sgr('1;31') };
}

/** One thing the database must show after a step. */
interface Expectation {
  readonly what: string;
  readonly actual: (s: Snapshot) => string | undefined;
  readonly want: string;
}

const iface = (s: Snapshot, name: string, key: string): string | undefined => s.interfaces.find((i) => i.name === name)?.externalIds[key];
const bridge = (s: Snapshot, name: string) => s.bridges.find((b) => b.name === name);

const LOG_ROW_WIDTH = 120;
const clip = (text: string): string => (text.length > LOG_ROW_WIDTH ? `${text.slice(0, LOG_ROW_WIDTH - 1)}…` : text);

/** `DEMO_STEP`: a step did not converge or a peer misbehaved; the message names what was missing. */
class DemoStepError extends CodedError<'DEMO_STEP'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEMO_STEP', message, options);
  }
}

/** How long one step may take to converge before the demo fails (the daemon needs milliseconds). */
const CONVERGE_TIMEOUT_MS = 8000;
/** Reading pause after each step (not with --fast). */
const PAUSE_MS = 700;
const NICIRA_IFACE_ID = 'sdn-port-42';
const CONTROLLER_KEY = 'controller-owned';

/**
 * Runs the demo; resolves with the process exit code (0: every step converged and the daemon exited 0
 * on SIGTERM). Writes its report through `write`; aborting `signal` (Ctrl-C) cleans up and resolves 130.
 */
export async function runDemo(options: DemoOptions, write: (text: string) => void, signal: AbortSignal): Promise<number> {
  const started = Date.now();
  const style = styleFor(options.color);
  const say = (text = ''): void => {
    write(`${text}\n`);
  };

  if (!existsSync(CLI)) {
    say(style.fail(`the daemon is not built (${CLI} is missing): run \`npm run build\` (npm run demo does)`));
    return 1;
  }

  let env: HostEnv;
  try {
    env = await startHostEnv({ hosts: 2, vms: 4, vifsPerVm: 2, eventDelayMs: 5 });
  } catch (err) {
    say(style.fail(`cannot start the sandbox: ${describeError(err)}`));
    say(`The demo needs Open vSwitch's ovsdb-server; install it with:  ${INSTALL_HINT}`);
    return 1;
  }

  const logFile = join(env.dir, 'daemon.log');
  const daemonLines: LogLine[] = [];
  let daemon: Daemon | undefined;
  let previous: Snapshot = EMPTY_SNAPSHOT;
  let stepNo = 0;
  let failed = false;
  let interrupted = false;

  const pause = async (): Promise<void> => {
    if (!options.fast) await sleep(PAUSE_MS, undefined, { signal });
  };

  const isUpdate = (l: LogLine): boolean => typeof l.msg === 'string' && /^updated \d+ rows?/.test(l.msg);
  const isNotable = (l: LogLine): boolean => isUpdate(l) || l.level >= 40;

  /** Prints the daemon's change and warning lines seen since the last call, briefly. */
  const flushDaemonLines = (): void => {
    for (const line of daemonLines.splice(0).filter(isNotable)) {
      const level = line.level >= 50 ? 'ERROR ' : line.level >= 40 ? 'WARN ' : '';
      const rows = Array.isArray(line.rows) ? (line.rows as unknown[]).filter((r): r is string => typeof r === 'string').map((r) => clip(abbreviate(r))) : [];
      const [only] = rows;
      if (rows.length === 1 && only !== undefined) {
        say(style.dim(`  daemon │ ${level}${abbreviate(line.msg ?? '')}: ${only}`));
        continue;
      }
      say(style.dim(`  daemon │ ${level}${abbreviate(line.msg ?? '')}`));
      for (const row of rows.slice(0, 6)) say(style.dim(`  daemon │   ${row}`));
      if (rows.length > 6) say(style.dim(`  daemon │   … ${String(rows.length - 6)} more`));
    }
  };

  /**
   * Polls the database until every expectation holds; throws a DemoStepError naming the ones that
   * did not. When the step made the daemon write, waits briefly for its log line too (it is written
   * after the commit, so it can trail what ovs-vsctl already shows).
   */
  const converge = async (expectations: readonly Expectation[], daemonWrites: boolean): Promise<Snapshot> => {
    let unmet: readonly Expectation[] = expectations;
    let last: Snapshot = previous;
    try {
      const snapshot = await waitFor(
        async () => {
          last = await readSnapshot((...args) => env.db.vsctl(...args));
          const current = last;
          unmet = expectations.filter((e) => e.actual(current) !== e.want);
          return unmet.length === 0 ? current : undefined;
        },
        CONVERGE_TIMEOUT_MS,
        'convergence',
        signal,
      );
      if (daemonWrites) await waitFor(() => daemonLines.some(isUpdate), 1000, 'the daemon log line', signal).catch(() => undefined);
      return snapshot;
    } catch (err) {
      if (signal.aborted) throw err;
      const s = last;
      const detail = unmet.map((e) => `${e.what} is ${JSON.stringify(e.actual(s) ?? null)}, expected ${JSON.stringify(e.want)}`);
      throw new DemoStepError(`did not converge within ${String(CONVERGE_TIMEOUT_MS)} ms: ${detail.join('; ')}`, { cause: err });
    }
  };

  /** A step: heading, action, convergence, the daemon's lines, the table with changes marked. */
  const step = async (heading: string, command: string, act: () => Promise<void>, expectations: readonly Expectation[], daemonWrites = true): Promise<void> => {
    stepNo++;
    say();
    say(style.step(`${String(stepNo)}) ${heading}`));
    if (command !== '') say(style.dim(`   $ ${abbreviate(command)}`));
    await act();
    const snapshot = await converge(expectations, daemonWrites);
    flushDaemonLines();
    say(render(snapshot, previous, style));
    previous = snapshot;
  };

  try {
    const vifs = env.vifs;
    const networks = env.sim.state.all('network');
    const netOf = (bridgeName: string): string => networks.find((n) => n.fields.bridge === bridgeName)?.uuid ?? '';
    const pool = env.sim.state.all('pool')[0];
    // XAPI configuration an operator would have set: the pool's fail mode, and overrides on xenbr1's network.
    if (pool !== undefined) env.sim.state.addToOtherConfig('pool', pool.ref, 'vswitch-controller-fail-mode', 'secure');
    env.sim.state.addToOtherConfig('network', netOf('xenbr1'), 'vswitch-controller-fail-mode', 'standalone');
    env.sim.state.addToOtherConfig('network', netOf('xenbr1'), 'nicira-bridge-id', 'sdn-bridge-1');
    env.sim.state.addToOtherConfig('network', netOf('xenbr1'), 'vswitch-disable-in-band', 'true');

    say(style.heading('ovs-xapi-sync demo'));
    say(`  ovsdb-server  ${env.db.remote}`);
    say(`  XAPI (sim)    ${env.xapiUrl}: 2 hosts, 4 VMs (2 running here, 2 VIFs each), networks xenbr0 and xenbr1`);
    say(`                pool other_config: vswitch-controller-fail-mode=secure`);
    say(`                xenbr1 other_config: vswitch-controller-fail-mode=standalone nicira-bridge-id=sdn-bridge-1 vswitch-disable-in-band=true`);
    say(`  this host     ${abbreviate(env.sim.thisHost.uuid)} (XAPI), inventory INSTALLATION_UUID ${abbreviate('0b1e7a55-1a57-4a11-9a11-000000000001')}`);
    previous = await readSnapshot((...args) => env.db.vsctl(...args));

    const d = env.startDaemon({ logLevel: 'info', logFile, onLog: (line) => daemonLines.push(line) });
    daemon = d;
    const healthUrl = await d.healthUrl();
    say(`  daemon        pid ${String(d.pid)}, health ${healthUrl}, control socket ${d.controlPath}`);
    say(`                full logs: ${logFile}`);
    say(style.dim(`  (cells marked * changed in that step; uuids are shown by their first 8 hex digits)`));

    const hostUuid = env.sim.thisHost.uuid;
    const [first, second] = vifs;
    if (first === undefined || second === undefined) throw new DemoStepError('the simulator generated fewer than two local VIFs');
    const vifName = (v: LocalVif): string => `vif${String(v.domid)}.${v.device}`;
    const tapName = (v: LocalVif): string => `tap${String(v.domid)}.${v.device}`;

    await step(
      'xcp-networkd creates the bridges of the host\'s networks',
      'ovs-vsctl add-br xenbr0 -- br-set-external-id xenbr0 xs-network-uuids <network uuid>   (and xenbr1)',
      async () => {
        for (const name of ['xenbr0', 'xenbr1']) {
          await env.db.vsctl('--may-exist', 'add-br', name, '--', 'br-set-external-id', name, 'xs-network-uuids', netOf(name));
        }
      },
      [
        { what: 'Open_vSwitch system-id', actual: (s) => s.ovs?.externalIds['system-id'], want: hostUuid },
        { what: 'Open_vSwitch system_type', actual: (s) => s.ovs?.systemType, want: 'XCP-ng' },
        { what: 'xenbr0 fail_mode', actual: (s) => bridge(s, 'xenbr0')?.failMode, want: 'secure' },
        { what: 'xenbr0 bridge-id', actual: (s) => bridge(s, 'xenbr0')?.externalIds['bridge-id'], want: netOf('xenbr0') },
        { what: 'xenbr1 fail_mode', actual: (s) => bridge(s, 'xenbr1')?.failMode, want: 'standalone' },
        { what: 'xenbr1 bridge-id', actual: (s) => bridge(s, 'xenbr1')?.externalIds['bridge-id'], want: 'sdn-bridge-1' },
        { what: 'xenbr1 disable-in-band', actual: (s) => bridge(s, 'xenbr1')?.otherConfig['disable-in-band'], want: 'true' },
      ],
    );
    await pause();

    await step(
      `the vif hotplug script plugs ${String(vifs.length)} VIF ports with the four xs keys`,
      `ovs-vsctl add-port ${first.bridge} ${vifName(first)} -- set Interface ${vifName(first)} external_ids:attached-mac=… xs-network-uuid=… xs-vif-uuid=… xs-vm-uuid=…`,
      async () => {
        for (const v of vifs) await env.plugVif(v);
      },
      vifs.flatMap((v) => [
        { what: `${vifName(v)} iface-id`, actual: (s: Snapshot) => iface(s, vifName(v), 'iface-id'), want: v.vifUuid },
        { what: `${vifName(v)} vm-id`, actual: (s: Snapshot) => iface(s, vifName(v), 'vm-id'), want: v.vmUuid },
        { what: `${vifName(v)} iface-status`, actual: (s: Snapshot) => iface(s, vifName(v), 'iface-status'), want: 'active' },
      ]),
    );
    await pause();

    await step(
      `an HVM guest boots: qemu's tap ${tapName(first)} is plugged next to ${vifName(first)} (no xs keys)`,
      `ovs-vsctl add-port ${first.bridge} ${tapName(first)}`,
      async () => {
        await env.plugTap(first);
      },
      [
        { what: `${tapName(first)} iface-status`, actual: (s) => iface(s, tapName(first), 'iface-status'), want: 'active' },
        { what: `${tapName(first)} iface-id`, actual: (s) => iface(s, tapName(first), 'iface-id'), want: first.vifUuid },
        { what: `${tapName(first)} vm-id`, actual: (s) => iface(s, tapName(first), 'vm-id'), want: first.vmUuid },
        { what: `${tapName(first)} xs-vif-uuid (copied)`, actual: (s) => iface(s, tapName(first), 'xs-vif-uuid'), want: first.vifUuid },
        { what: `${vifName(first)} iface-status`, actual: (s) => iface(s, vifName(first), 'iface-status'), want: 'inactive' },
      ],
    );
    await pause();

    await step(
      `the guest loads its PV drivers: the tap goes, ${vifName(first)} carries the traffic again`,
      `ovs-vsctl del-port ${tapName(first)}`,
      async () => {
        await env.unplug(tapName(first));
      },
      [{ what: `${vifName(first)} iface-status`, actual: (s) => iface(s, vifName(first), 'iface-status'), want: 'active' }],
    );
    await pause();

    await step(
      `an operator sets an override in XAPI: nicira-iface-id on ${vifName(second)}'s VIF (no flush-cache)`,
      `xe vif-param-set uuid=${second.vifUuid} other-config:nicira-iface-id=${NICIRA_IFACE_ID}   (VIF.add_to_other_config over JSON-RPC)`,
      async () => {
        await addVifOverride(env.xapiUrl, second.vifUuid, 'nicira-iface-id', NICIRA_IFACE_ID);
      },
      [{ what: `${vifName(second)} iface-id`, actual: (s) => iface(s, vifName(second), 'iface-id'), want: NICIRA_IFACE_ID }],
    );
    await pause();

    stepNo++;
    say();
    say(style.step(`${String(stepNo)}) an operator asks the daemon how it is doing`));
    say(style.dim(`   $ ovs-appctl -t ${d.controlPath} status`));
    const status = await env.appctl(d.controlPath, 'status');
    if (status.code !== 0) throw new DemoStepError(`ovs-appctl status exited ${String(status.code)}: ${status.stderr.trim()}`);
    for (const line of status.stdout.trimEnd().split('\n')) say(`  ${line}`);
    say(style.dim(`   $ curl ${healthUrl}/readyz`));
    let readyBody = '';
    let readyCode = 0;
    try {
      await waitFor(
        async () => {
          const res = await fetch(`${healthUrl}/readyz`, { signal });
          readyCode = res.status;
          readyBody = await res.text();
          return res.status === 200;
        },
        CONVERGE_TIMEOUT_MS,
        '/readyz 200',
        signal,
      );
    } catch (err) {
      if (signal.aborted) throw err;
      throw new DemoStepError(`/readyz did not answer 200 within ${String(CONVERGE_TIMEOUT_MS)} ms (last: ${String(readyCode)} ${readyBody.trim()})`, { cause: err });
    }
    say(`  HTTP ${String(readyCode)} ${readyBody.trim()}`);
    flushDaemonLines();
    await pause();

    await step(
      `a controller writes its own key on ${vifName(first)} (and clobbers iface-id by mistake)`,
      `ovs-vsctl set Interface ${vifName(first)} external_ids:${CONTROLLER_KEY}=keep-me external_ids:iface-id=clobbered`,
      async () => {
        await env.db.vsctl('set', 'Interface', vifName(first), `external_ids:${CONTROLLER_KEY}=keep-me`, 'external_ids:iface-id=clobbered');
      },
      [
        { what: `${vifName(first)} iface-id (restored)`, actual: (s) => iface(s, vifName(first), 'iface-id'), want: first.vifUuid },
        { what: `${vifName(first)} ${CONTROLLER_KEY} (kept)`, actual: (s) => iface(s, vifName(first), CONTROLLER_KEY), want: 'keep-me' },
      ],
    );
    say(style.ok(`  the daemon restored iface-id and left ${CONTROLLER_KEY}=keep-me alone`));

    say();
    say(style.step('stopping: SIGTERM to the daemon'));
    const stopped = await d.stop('SIGTERM');
    flushDaemonLines();
    const how = stopped.signal === null ? `exit code ${String(stopped.code)}` : `signal ${stopped.signal}`;
    if (stopped.code !== 0) throw new DemoStepError(`the daemon ended with ${how} after ${String(stopped.ms)} ms on SIGTERM (expected exit code 0)`);
    say(`  daemon exited with ${how} after ${String(stopped.ms)} ms`);
  } catch (err) {
    if (signal.aborted) {
      interrupted = true;
      say();
      say(style.fail('interrupted'));
    } else {
      failed = true;
      say();
      say(style.fail(`✗ step ${String(stepNo)} failed: ${err instanceof DemoStepError ? err.message : describeError(err)}`));
      flushDaemonLines();
      const tail = daemon?.stderr().trim() ?? '';
      if (tail !== '') say(style.dim(`  daemon stderr: ${tail.slice(-800)}`));
    }
  }

  const keep = options.keep || failed;
  await env.close({ keep });
  if (keep) say(`temp dir kept: ${env.dir} (daemon.log, ovsdb-server.log, root/, run/)`);
  if (interrupted) return 130;
  if (failed) return 1;
  say(style.ok(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: every step converged`));
  return 0;
}

/**
 * What `xe vif-param-set other-config:KEY=VALUE` does, through the project's own XAPI client over
 * JSON-RPC: `VIF.get_by_uuid`, then `VIF.add_to_other_config` (which fails with MAP_DUPLICATE_KEY
 * when the key exists, as XAPI's does).
 */
async function addVifOverride(xapiUrl: string, vifUuid: string, key: string, value: string): Promise<void> {
  const logger = pino({ level: 'silent' });
  const transport = createHttpTransport({ endpoint: parseXapiUrl(xapiUrl), codec: codecFor('jsonrpc'), logger, timeoutMs: 5000 });
  const session = new XapiSession({ transport, user: 'root', password: '', logger, retries: 1 });
  try {
    const ref = await session.call('VIF.get_by_uuid', [vifUuid]);
    await session.call('VIF.add_to_other_config', [ref, key, value]);
  } finally {
    await session.close();
  }
}
