import { CodedError } from '../errors.js';

/** Codes that mean the server is away, slow or restarting: a new connection or attempt can cure them. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'OVSDB_NOT_CONNECTED',
  'OVSDB_CONNECTION_CLOSED',
  'OVSDB_TIMEOUT',
  'OVSDB_PROTOCOL',
  'OVSDB_MESSAGE_TOO_LARGE',
  'OVSDB_REPLICA_INCONSISTENT',
]);

/**
 * In-band operation errors that a fresh attempt can cure (RFC 7047 §4.1.3): a `wait` whose
 * precondition failed ("timed out"), a transaction cancelled, or a server out of resources.
 */
const TRANSIENT_OPERATION_ERRORS: ReadonlySet<string> = new Set(['timed out', 'canceled', 'resources exhausted', 'I/O error']);

/** Every error raised by `src/ovsdb` is an `OvsdbError`; branch on `code`, never on the message. */
export class OvsdbError extends CodedError {
  override get transient(): boolean {
    return TRANSIENT_CODES.has(this.code);
  }
}

/**
 * A JSON-RPC error reply (`{"id":N,"error":E}`, `result` absent: docs/ovsdb.md §1). `error` is the
 * server's value as sent: a bare string such as `"unknown method"`, or an `<error>` object.
 */
export class OvsdbRpcError extends OvsdbError {
  readonly method: string;
  readonly error: unknown;
  constructor(method: string, error: unknown) {
    super('OVSDB_RPC_ERROR', `${method}: server returned an error: ${describeRpcError(error)}`);
    this.method = method;
    this.error = error;
  }

  /** The error string (`"unknown method"`, `"unknown database"`…) whatever shape the server used. */
  get errorString(): string | undefined {
    if (typeof this.error === 'string') return this.error;
    if (isRecord(this.error) && typeof this.error.error === 'string') return this.error.error;
    return undefined;
  }
}

/**
 * An in-band failure in a `transact` result (RFC 7047 §4.1.3). `opIndex` is the index of the failing
 * operation; when every operation succeeded but the commit failed, the server appends one extra element
 * and `opIndex` equals the number of operations sent (`commitError` is then true). `error` is the RFC
 * error string ("timed out", "constraint violation", "referential integrity violation"…).
 */
export class OvsdbOperationError extends OvsdbError {
  readonly error: string;
  readonly details: string | undefined;
  readonly opIndex: number;
  readonly commitError: boolean;
  constructor(error: string, details: string | undefined, opIndex: number, commitError: boolean) {
    const where = commitError ? 'commit' : `operation ${opIndex}`;
    super('OVSDB_OPERATION', `${where} failed: ${error}${details === undefined ? '' : ` (${details})`}`);
    this.error = error;
    this.details = details;
    this.opIndex = opIndex;
    this.commitError = commitError;
  }

  override get transient(): boolean {
    return TRANSIENT_OPERATION_ERRORS.has(this.error);
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeRpcError(error: unknown): string {
  if (typeof error === 'string') return error;
  if (isRecord(error)) {
    const head = typeof error.error === 'string' ? error.error : 'error';
    return typeof error.details === 'string' ? `${head} (${error.details})` : head;
  }
  return JSON.stringify(error);
}
