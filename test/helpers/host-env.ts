/**
 * The whole-host harness for daemon-level tests and the benchmark. It lives in src/sandbox/host.ts so
 * that the demo (which runs from dist/) shares it; this file keeps the tests' import path stable.
 */
export {
  CLI,
  HostEnvError,
  INSTALLATION_UUID,
  REPO_ROOT,
  startHostEnv,
  TEST_XAPI_PROTOCOL,
  waitFor,
  type Daemon,
  type DaemonOptions,
  type HostEnv,
  type HostEnvOptions,
  type LocalVif,
  type LogLine,
} from '../../src/sandbox/host.js';
