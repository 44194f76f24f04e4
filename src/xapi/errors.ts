import { CodedError } from '../errors.js';

/**
 * XAPI error codes that mean "the server cannot serve this right now" (docs/xapi.md §1.2:
 * emergency mode during boot or while the master is unreachable).
 */
const TRANSIENT_XAPI_CODES: ReadonlySet<string> = new Set([
  'HOST_STILL_BOOTING',
  'HOST_HAS_NO_MANAGEMENT_IP',
  'HOST_UNKNOWN_TO_MASTER',
  'HOST_MASTER_CANNOT_TALK_BACK',
  'TOO_BUSY',
  'EVENTS_LOST',
]);

/**
 * XAPI answered the call with a failure (XML-RPC `Status: Failure` + `ErrorDescription`, JSON-RPC
 * `error`). `code` is XAPI's error code (`SESSION_INVALID`, `UUID_INVALID`, `HOST_IS_SLAVE`, …),
 * `params` its parameters, `method` the call that failed. Both codecs produce exactly this.
 */
export class XapiError extends CodedError<string> {
  readonly params: readonly string[];
  readonly method: string;
  constructor(code: string, params: readonly string[], method: string) {
    super(code, `${method}: ${[code, ...params].join(' ')}`);
    this.params = params;
    this.method = method;
  }

  override get transient(): boolean {
    return TRANSIENT_XAPI_CODES.has(this.code);
  }
}

export type XapiTransportErrorCode =
  | 'XAPI_URL_INVALID'
  | 'XAPI_TRANSPORT'
  | 'XAPI_TIMEOUT'
  | 'XAPI_HTTP'
  | 'XAPI_PROTOCOL'
  | 'XAPI_RESPONSE_TOO_LARGE';

/**
 * The call did not produce an XAPI answer at all: the connection failed, timed out, the HTTP status
 * was not 200, or the body could not be decoded. `status` is set for `XAPI_HTTP`.
 */
export class XapiTransportError extends CodedError<XapiTransportErrorCode> {
  readonly method: string | undefined;
  readonly status: number | undefined;
  constructor(code: XapiTransportErrorCode, message: string, options?: { method?: string; status?: number; cause?: unknown }) {
    super(code, options?.method ? `${options.method}: ${message}` : message, { cause: options?.cause });
    this.method = options?.method;
    this.status = options?.status;
  }

  /** Every failure to get an answer is transient except a bad URL and a 4xx status (our request is wrong). */
  override get transient(): boolean {
    if (this.code === 'XAPI_URL_INVALID') return false;
    if (this.code === 'XAPI_HTTP') return this.status === undefined || this.status >= 500;
    return true;
  }
}
