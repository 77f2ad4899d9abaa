import { randomUUID } from 'node:crypto';
import { METHODS, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { problemContentType, problemTypeBase, type Problem } from './problem.js';

/**
 * What Node's `clientError` event carries. Fastify types `rawPacket` as a serialised buffer; it
 * is a `Buffer` of the chunk the parser choked on, and absent on a timeout.
 */
type ClientError = Error & { readonly code?: string; readonly rawPacket?: unknown };

type Refusal = { readonly status: number; readonly code: string; readonly title: string; readonly detail: string };

function refusalFor(error: ClientError): Refusal {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'header-fields-too-large',
        title: 'Request header fields too large',
        detail: 'The request line and headers together are over the size the server accepts; a long query string counts.',
      };
    case 'HPE_REQUEST_TIMEOUT':
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'request-timeout', title: 'Request timeout', detail: 'The request did not arrive in full in time.' };
    default:
      // llhttp's reasons name the part at fault ("Invalid char in url query", "Invalid header
      // value char") and nothing of the server's, so the caller learns what to encode.
      return {
        status: 400,
        code: 'bad-request',
        title: 'Bad request',
        detail: `The request is not valid HTTP: ${error.message.replace(/^Parse Error: /, '')}.`,
      };
  }
}

/**
 * The method and path of the request line, when the chunk the parser refused starts with one.
 * The path only: a query string may be what was too long. Bytes outside visible ASCII are
 * percent-encoded so the problem document and the log line hold text, not raw bytes.
 */
function requestLineOf(error: ClientError): { method: string; path: string } | undefined {
  if (!Buffer.isBuffer(error.rawPacket)) return undefined;
  const line = /^([A-Z]+) (\/[^?# \r\n]*)/.exec(error.rawPacket.subarray(0, 8 * 1024).toString('latin1'));
  const method = line?.[1];
  const path = line?.[2];
  if (method === undefined || path === undefined || !METHODS.includes(method)) return undefined;
  return { method, path: path.replace(/[^!-~]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`) };
}

/**
 * Fastify's `clientErrorHandler` (bound to the instance): a request Node's HTTP parser refuses
 * never becomes a fastify request, so no hook, error handler or `frameworkErrors` sees it and
 * fastify's default answers plain JSON. API.md wants problem+json for every 4xx. Answered on
 * the bare socket, which is then closed: the parser's state is lost, nothing more can be read.
 */
export function answerClientError(this: FastifyInstance, error: ClientError, socket: Socket): void {
  // A reset connection is already gone: there is no one to answer, and nothing was asked.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const refusal = refusalFor(error);
  const requestLine = requestLineOf(error);
  // The headers were not (all) parsed, so a caller's X-Request-Id cannot be trusted or found.
  const requestId = randomUUID();
  const problem: Problem = {
    type: `${problemTypeBase}${refusal.code}`,
    title: refusal.title,
    status: refusal.status,
    detail: refusal.detail,
    // Unreadable request line: name the occurrence rather than a path it might not have been.
    instance: requestLine?.path ?? `urn:uuid:${requestId}`,
    requestId,
  };
  const body = JSON.stringify(problem);
  // No time is known: the parser gives no start. Counted with 0 s, so the count is right and
  // the rare refusal barely moves the latency buckets.
  const method = requestLine?.method ?? 'UNKNOWN';
  this.observeAnswer({ method, route: 'unmatched', statusCode: refusal.status }, 0);
  this.log.info(
    { requestId, method, url: problem.instance, remoteAddress: socket.remoteAddress, res: { statusCode: refusal.status }, reason: error.code },
    'request completed',
  );
  if (socket.writable) {
    socket.write(
      [
        `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? ''}`,
        `Content-Type: ${problemContentType}`,
        `Content-Length: ${Buffer.byteLength(body)}`,
        `X-Request-Id: ${requestId}`,
        'Cache-Control: no-store',
        'Connection: close',
        '',
        body,
      ].join('\r\n'),
    );
  }
  socket.destroy();
}
