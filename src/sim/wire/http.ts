import type http from 'node:http';

/**
 * HTTP answers of xapi's own server for requests that never reach an RPC handler
 * (xapi-project/xen-api ocaml/libs/http-lib/http_svr.ml): every one closes the connection and
 * forbids caching (`response_error_html`, http_svr.ml:145-155).
 */

/** `escape_html` (http_svr.ml:343-356). */
export function escapeHtml(s: string): string {
  return s.replace(/[<>'"&]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === "'" ? '&apos;' : c === '"' ? '&quot;' : '&amp;'));
}

function errorPage(res: http.ServerResponse, status: number, reason: string, body: string): number {
  const length = Buffer.byteLength(body);
  res.writeHead(status, reason, { 'content-type': 'text/html', connection: 'close', 'cache-control': 'no-cache, no-store', 'content-length': length });
  res.end(body);
  return length;
}

/**
 * `response_internal_error` (http_svr.ml:200-217): what a handler exception becomes, e.g. a request
 * without Content-Length (`read_body`, http_svr.ml:700-705) or a body the RPC parser rejects.
 * `extra` is the OCaml exception text, HTML-escaped (http_svr.ml:562-564).
 */
export function sendInternalError(res: http.ServerResponse, extra?: string): number {
  const more = extra === undefined ? '' : `<h1> Additional information </h1>${escapeHtml(extra)}`;
  return errorPage(
    res,
    500,
    'Internal Error',
    `<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while and try again. If the problem persists, please contact your support representative.${more}</body></html>`,
  );
}

/** A path the host does not serve (`response_missing`, http_svr.ml:134-143): 404, empty body. */
export function sendNotFound(res: http.ServerResponse): number {
  return errorPage(res, 404, 'Not Found', '');
}

/** The exception text of a request without Content-Length (http_svr.ml:704, `Printexc.to_string`). */
export const NO_CONTENT_LENGTH = 'Failure("We require a content-length: HTTP header")';
/** The exception text of a body over the 300 KiB limit (http_svr.ml:698, 710). */
export const BODY_TOO_LARGE = 'Http_svr.Client_requested_size_over_limit';
