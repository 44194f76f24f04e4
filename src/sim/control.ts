import type http from 'node:http';
import { LifecycleError } from './lifecycle.js';
import { SIM_CLASSES, SimStateError, type SimClass, type StringMap } from './state.js';
import type { SimFaultSettings, SimPool, Simulator } from './simulator.js';

/**
 * The simulator's control endpoint (JSON over HTTP), for tests, the demo and the benchmark when
 * the simulator runs as a separate process:
 *   GET  /counters                 → counters;  POST /counters/reset
 *   GET  /faults                   → fault settings
 *   POST /faults {down?, latencyMs?, malformedEvery?, http500?, eventFromHang?, hostStillBooting?,
 *                 invalidateSessions?: true}
 *   GET  /state/local-vifs         → localVifs()
 *   GET  /state/this-host          → {ref, uuid}
 *   POST /state/other_config {class, id, op: set|add|remove, key?, value?, map?}
 *   POST /state/vm {op: add|update|remove, …}; /state/vif {op: add|remove, …};
 *        /state/network {op: add|remove, …}; /state/host-software-version {id, map}
 *   GET  /waiters                  → {abandonedWaiters, abandonedWaitersTotal}
 *   POST /database/restart-older {generations}
 *   GET  /pool                     → {masterUrl, hosts: [{uuid, url}]} (pool-member mode)
 *   POST /pool/host {host, down}   ; POST /pool/promote {host}
 *   POST /lifecycle {op: vm-start|vm-shutdown|vm-migrate|vif-create|vif-plug|vif-unplug|vif-destroy,
 *                    vm?, host?, vif?, network?, device?, domid?} (no port hooks: the caller plugs ports)
 * Errors answer 400 with {"error": message}.
 */
type Body = Record<string, unknown>;

class BadRequest extends Error {}

function str(b: Body, key: string): string {
  const v = b[key];
  if (typeof v !== 'string') throw new BadRequest(`${key} must be a string`);
  return v;
}

function map(b: Body, key: string): StringMap {
  const v = b[key];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadRequest(`${key} must be an object`);
  return v as StringMap;
}

function readJson(req: http.IncomingMessage): Promise<Body> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        const v: unknown = text === '' ? {} : JSON.parse(text);
        if (typeof v !== 'object' || v === null || Array.isArray(v)) reject(new BadRequest('body must be a JSON object'));
        else resolve(v as Body);
      } catch {
        reject(new BadRequest('malformed JSON'));
      }
    });
  });
}

function num(b: Body, key: string): number {
  const v = b[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new BadRequest(`${key} must be a non-negative integer`);
  return v;
}

function poolOf(sim: Simulator): SimPool {
  if (sim.pool === undefined) throw new BadRequest('not in pool-member mode');
  return sim.pool;
}

async function lifecycle(sim: Simulator, b: Body): Promise<unknown> {
  const l = sim.lifecycle;
  const domid = typeof b.domid === 'number' ? { domid: b.domid } : {};
  switch (b.op) {
    case 'vm-start':
      return { domid: await l.vmStart(str(b, 'vm'), str(b, 'host'), domid) };
    case 'vm-shutdown':
      await l.vmShutdown(str(b, 'vm'));
      return {};
    case 'vm-migrate':
      return { domid: await l.vmMigrate(str(b, 'vm'), str(b, 'host'), domid) };
    case 'vif-create':
      return l.vifCreate({ vm: str(b, 'vm'), network: str(b, 'network'), device: str(b, 'device') });
    case 'vif-plug':
      await l.vifPlug(str(b, 'vif'));
      return {};
    case 'vif-unplug':
      await l.vifUnplug(str(b, 'vif'));
      return {};
    case 'vif-destroy':
      l.vifDestroy(str(b, 'vif'));
      return {};
    default:
      throw new BadRequest('op must be vm-start, vm-shutdown, vm-migrate, vif-create, vif-plug, vif-unplug or vif-destroy');
  }
}

async function route(sim: Simulator, method: string, path: string, req: http.IncomingMessage): Promise<unknown> {
  const state = sim.state;
  if (method === 'GET' && path === '/counters') return sim.counters;
  if (method === 'POST' && path === '/counters/reset') {
    sim.resetCounters();
    return {};
  }
  const faultView = (): SimFaultSettings => ({ ...sim.faults });
  if (method === 'GET' && path === '/faults') return faultView();
  if (method === 'GET' && path === '/state/local-vifs') return sim.localVifs();
  if (method === 'GET' && path === '/state/this-host') return sim.thisHost;
  if (method === 'GET' && path === '/waiters') return { abandonedWaiters: sim.abandonedWaiters, abandonedWaitersTotal: sim.abandonedWaitersTotal };
  if (method === 'GET' && path === '/pool') {
    const pool = sim.pool;
    if (pool === undefined) throw new BadRequest('not in pool-member mode');
    return { masterUrl: pool.masterUrl, hosts: state.all('host').map((h) => ({ uuid: h.uuid, url: pool.hostUrl(h.ref) })) };
  }
  if (method !== 'POST') throw new BadRequest(`no route ${method} ${path}`);
  const b = await readJson(req);
  switch (path) {
    case '/faults': {
      const { invalidateSessions, ...patch } = b;
      if (invalidateSessions === true) sim.faults.invalidateSessions();
      await sim.faults.set(patch);
      return faultView();
    }
    case '/state/other_config': {
      const cls = SIM_CLASSES.find((c) => c === b.class);
      if (cls === undefined) throw new BadRequest(`class must be one of ${SIM_CLASSES.join(', ')}`);
      const id = str(b, 'id');
      if (b.op === 'set') state.setOtherConfig(cls, id, map(b, 'map'));
      else if (b.op === 'add') {
        if (!state.addToOtherConfig(cls, id, str(b, 'key'), str(b, 'value'))) throw new BadRequest('key already present');
      } else if (b.op === 'remove') state.removeFromOtherConfig(cls, id, str(b, 'key'));
      else throw new BadRequest('op must be set, add or remove');
      return {};
    }
    case '/state/vm':
      if (b.op === 'add') return state.addVm(b);
      if (b.op === 'update') {
        state.updateVm(str(b, 'id'), b);
        return {};
      }
      if (b.op === 'remove') {
        state.removeVm(str(b, 'id'));
        return {};
      }
      throw new BadRequest('op must be add, update or remove');
    case '/state/vif':
      if (b.op === 'add') return state.addVif(b as never);
      if (b.op === 'remove') {
        state.removeVif(str(b, 'id'));
        return {};
      }
      throw new BadRequest('op must be add or remove');
    case '/state/network':
      if (b.op === 'add') return state.addNetwork(b as never);
      if (b.op === 'remove') {
        state.removeNetwork(str(b, 'id'));
        return {};
      }
      throw new BadRequest('op must be add or remove');
    case '/state/host-software-version':
      state.setHostSoftwareVersion(str(b, 'id'), map(b, 'map'));
      return {};
    case '/state/touch': {
      const cls: SimClass | undefined = SIM_CLASSES.find((c) => c === b.class);
      if (cls === undefined) throw new BadRequest('unknown class');
      return { generation: state.touch(cls, str(b, 'id')) };
    }
    case '/database/restart-older':
      sim.restartOnOlderDatabase(num(b, 'generations'));
      return {};
    case '/pool/host':
      await poolOf(sim).setHostDown(str(b, 'host'), b.down === true);
      return {};
    case '/pool/promote':
      poolOf(sim).promote(str(b, 'host'));
      return {};
    case '/lifecycle':
      return lifecycle(sim, b);
    default:
      throw new BadRequest(`no route ${method} ${path}`);
  }
}

export function controlHandler(sim: Simulator): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const send = (status: number, value: unknown): void => {
      const body = JSON.stringify(value);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    route(sim, req.method ?? 'GET', path, req).then(
      (v) => { send(200, v); },
      (err: unknown) => { send(err instanceof BadRequest || err instanceof SimStateError || err instanceof RangeError || err instanceof LifecycleError ? 400 : 500, { error: err instanceof Error ? err.message : 'error' }); },
    );
  };
}
