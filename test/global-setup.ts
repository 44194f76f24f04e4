import { execFileSync } from 'node:child_process';

/** Fail the whole run once, with an install hint, instead of every integration test separately. */
export default function setup(): void {
  for (const tool of ['ovsdb-server', 'ovsdb-tool', 'ovs-vsctl']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} not found: the integration tests need a real ovsdb-server (apt-get install openvswitch-switch)`);
    }
  }
}
