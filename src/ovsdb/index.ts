/** Public surface of the OVSDB client (docs/ARCHITECTURE.md §5: `src/ovsdb`). */
export { OvsdbClient } from './client.js';
export type { OvsdbClientOptions, OvsdbClientState, OvsdbClientCounters, TransactOptions } from './client.js';
export { OvsdbError, OvsdbOperationError, OvsdbRpcError } from './errors.js';
export { parseRemote, formatRemote, connectOptions } from './remote.js';
export type { OvsdbRemote } from './remote.js';
export { DEFAULT_MONITOR_SPEC, Replica } from './replica.js';
export type {
  BridgeRow,
  ColumnKind,
  InterfaceRow,
  MonitorSpec,
  OpenVswitchRow,
  ReplicaChange,
  ReplicaRow,
  RowChange,
  TableSpec,
} from './replica.js';
export * from './operations.js';
export * as notation from './notation.js';
