/**
 * Readiness is "converged" (docs/design.md §5): no row to write and no answer still awaited. A row
 * waiting on a slow XAPI lookup must keep /readyz at 503 even when another change runs a pass in the
 * meantime, for that pass reconciles other rows only and finds nothing pending among them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostEnv, waitFor, type Daemon, type HostEnv } from '../../helpers/host-env.js';
import { metricValue, probe, type CheckBody } from '../operations/helpers.js';

interface Readyz {
  readonly status: number;
  readonly reconcile: CheckBody | undefined;
}

describe('readiness while a lookup is in flight', () => {
  let env: HostEnv;
  let daemon: Daemon;

  const readyz = async (): Promise<Readyz> => {
    const { status, body } = await probe(await daemon.healthUrl(), '/readyz');
    return { status, reconcile: body.checks?.reconcile };
  };
  /** Passes that found nothing to write. */
  const convergedPasses = async (): Promise<number> =>
    metricValue(await daemon.healthUrl(), 'ovs_xapi_sync_reconcile_passes_total', { result: 'converged' });

  beforeAll(async () => {
    env = await startHostEnv({ vms: 2, vifsPerVm: 1 });
    await env.addBridges();
    daemon = env.startDaemon({ logLevel: 'info' });
    await waitFor(async () => (await readyz()).status === 200, 15_000, 'ready');
  });

  afterAll(async () => {
    await env.close();
  });

  it('stays not ready until the looked-up row is written, though a pass on another row ran meanwhile', async () => {
    const vif = env.vifs[0]!;
    await env.sim.faults.set({ latencyMs: 1500 });
    try {
      const name = await env.plugVif(vif);
      await waitFor(async () => ((await readyz()).reconcile?.ok === false ? true : undefined), 5000, 'not converged after the plug');
      // A foreign key on the bridge: a change the daemon reconciles at once, with nothing pending in it.
      const passesBefore = await convergedPasses();
      await env.db.vsctl('br-set-external-id', vif.bridge, 'probe', 'readiness');
      const seen: Readyz[] = [];
      const written = await waitFor(async () => {
        const state = await readyz();
        seen.push(state);
        return (await env.getKey('Interface', name, 'external_ids', 'iface-id')) === vif.vifUuid ? true : undefined;
      }, 10_000, 'iface-id written after the slow lookup');
      expect(written).toBe(true);
      // The bridge's pass ran while the lookup was in flight, and found nothing to write.
      expect(await convergedPasses()).toBeGreaterThan(passesBefore);
      const readyBeforeWrite = seen.slice(0, -1).filter((s) => s.status === 200 || s.reconcile?.ok === true);
      expect(readyBeforeWrite).toEqual([]);
      await waitFor(async () => ((await readyz()).status === 200 ? true : undefined), 10_000, 'ready once written');
    } finally {
      await env.sim.faults.set({ latencyMs: 0 });
    }
  });
});
