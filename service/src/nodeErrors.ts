import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { Logger } from './logger';

/**
 * Answers that Node's HTTP layer gives before the app sees a request, in the
 * same JSON shape as every other error, with a request id and nosniff.
 */

const STATUS_BY_CODE: Record<string, { status: number; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, message: 'request headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'the request did not arrive in time (REQUEST_TIMEOUT_MS / HEADERS_TIMEOUT_MS)' },
  HPE_INVALID_METHOD: { status: 400, message: 'malformed request: unknown HTTP method' },
};

function rawResponse(status: number, body: object, requestId: string, extra = ''): string {
  const json = JSON.stringify(body);
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(json)}\r\n` +
    `X-Request-Id: ${requestId}\r\n` +
    'X-Content-Type-Options: nosniff\r\n' +
    extra +
    'Connection: close\r\n\r\n' +
    json
  );
}

/** The server's 'clientError': a JSON 400/408/431 when an answer can still be written, else just close. */
export function answerClientError(error: NodeJS.ErrnoException, socket: net.Socket, logger: Logger, answering: boolean): void {
  if (error.code === 'ECONNRESET' || !socket.writable || answering) {
    socket.destroy();
    return;
  }
  const known = STATUS_BY_CODE[error.code ?? ''] ?? { status: 400, message: `malformed request (${error.code ?? 'parse error'})` };
  const requestId = randomUUID();
  // A client's mistake, not ours: one line without a stack.
  logger.info({ requestId, status: known.status, code: error.code }, 'request refused by the HTTP parser');
  socket.end(rawResponse(known.status, { error: known.message }, requestId));
}

/** The server's 'connect' (a CONNECT request, which Node hands over outside the app): a JSON 405 rather than a bare close. */
export function answerConnect(_req: http.IncomingMessage, socket: net.Socket): void {
  const body = { error: `method CONNECT is not allowed: this is not a proxy` };
  socket.on('error', () => undefined);
  socket.end(rawResponse(405, body, randomUUID(), 'Allow: GET, HEAD, POST, OPTIONS\r\n'));
}

/** A JSON answer written directly (outside the app), closing the connection. */
function answerDirectly(res: http.ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ error: message });
  res.shouldKeepAlive = false;
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Request-Id': randomUUID(),
    'X-Content-Type-Options': 'nosniff',
    Connection: 'close',
  });
  res.end(body);
}

/** For `Expect: 100-continue`: true (and answered 413) when the announced body is over the limit. */
export function refuseOversizeUpload(req: http.IncomingMessage, res: http.ServerResponse, limitBytes: number): boolean {
  if (!(Number(req.headers['content-length']) > limitBytes)) return false;
  answerDirectly(res, 413, `request body exceeds the limit of ${limitBytes} bytes (limit BODY_LIMIT_BYTES); not sent`);
  return true;
}

/** For an `Expect` other than 100-continue (Node would answer a bare 417). */
export function refuseExpectation(req: http.IncomingMessage, res: http.ServerResponse): void {
  answerDirectly(res, 417, `Expect "${String(req.headers.expect)}" is not supported (only 100-continue)`);
}
