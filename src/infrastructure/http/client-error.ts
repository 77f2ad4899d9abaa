import { randomUUID } from 'node:crypto';
import { METHODS, ServerResponse, STATUS_CODES } from 'node:http';
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
 * The method and path of the request line, when the chunk the parser refused starts with one
 * and that is the failing request's start: only when the chunk is all the connection ever sent.
 * A later chunk may begin inside a request (a header line, a body's tail) or with a request
 * already answered, whose path the refusal would then wrongly name; such a refusal goes unnamed.
 * The path only: a query string may be what was too long. Bytes outside visible ASCII are
 * percent-encoded so the problem document and the log line hold text, not raw bytes.
 */
function requestLineOf(error: ClientError, socket: Socket): { method: string; path: string } | undefined {
  if (!Buffer.isBuffer(error.rawPacket) || socket.bytesRead !== error.rawPacket.length) return undefined;
  const line = /^([A-Z]+) (\S+)/.exec(error.rawPacket.subarray(0, 8 * 1024).toString('latin1'));
  const method = line?.[1];
  const path = pathOf(line?.[2]);
  if (method === undefined || path === undefined || !METHODS.includes(method)) return undefined;
  return { method, path };
}

/**
 * The path of a request target, percent-encoded past visible ASCII; `undefined` for a target
 * that is no path (`*`, `http://…`, whatever the parser let through): read by pattern, never by
 * `new URL`, which throws on targets Node accepts (`//`), and nothing here may throw.
 */
function pathOf(target: string | undefined): string | undefined {
  const path = target === undefined ? undefined : /^(\/[^?#]*)/.exec(target)?.[1];
  return path?.replace(/[^!-~]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/**
 * The response on the socket now, if any: Node's ServerResponse attaches itself to its socket
 * as `_httpMessage` until it finishes (undocumented, hence checked); the next pipelined one
 * takes its place then.
 */
function responseOn(socket: Socket): ServerResponse | undefined {
  const message = '_httpMessage' in socket ? socket._httpMessage : undefined;
  return message instanceof ServerResponse ? message : undefined;
}

/** Sockets whose parser failed and that are left to finish the answers in flight: a later error on them is the same one. */
const closing = new WeakSet<Socket>();

/**
 * Fastify's `clientErrorHandler` (bound to the instance): a request Node's HTTP parser refuses
 * never becomes a fastify request, so no hook, error handler or `frameworkErrors` sees it and
 * fastify's default answers plain JSON. API.md wants problem+json for every 4xx. Answered on
 * the bare socket, which is then closed: the parser's state is lost, nothing more can be read.
 */
export function answerClientError(this: FastifyInstance, error: ClientError, socket: Socket): void {
  // A reset connection is already gone: there is no one to answer, and nothing was asked.
  if (error.code === 'ECONNRESET' || socket.destroyed || closing.has(socket)) return;
  // It runs in the socket's data handler, reading Node internals: a throw would end the process.
  guarded(socket, () => answer(this, error, socket));
}

function guarded(socket: Socket, work: () => void): void {
  try {
    work();
  } catch {
    socket.destroy();
  }
}

function answer(app: FastifyInstance, error: ClientError, socket: Socket): void {
  // The client sent part of a request and hung up: it waits for nothing, and no request was made.
  if (error.code === 'HPE_INVALID_EOF_STATE') {
    app.log.trace({ reason: error.code, remoteAddress: socket.remoteAddress }, 'connection closed mid-request');
    socket.destroy();
    return;
  }
  const inFlight = responseOn(socket);
  if (inFlight === undefined) {
    answerOnSocket(app, error, socket, requestLineOf(error, socket));
    return;
  }
  closing.add(socket);
  closeAfterAnswers(app, error, socket, inFlight);
}

/**
 * A pipelined request the parser refused, behind requests being answered: bytes written now
 * would land in (or be read as) the earlier answers, so those finish first and the connection
 * closes after them. The refused request itself gets an answer only if its headers made it into
 * a request (its body was what failed) whose response has not started: that response is its own.
 */
function closeAfterAnswers(app: FastifyInstance, error: ClientError, socket: Socket, response: ServerResponse | undefined): void {
  if (socket.destroyed) return;
  if (response === undefined) {
    app.log.info({ reason: error.code, remoteAddress: socket.remoteAddress }, 'connection closed after its answers: a pipelined request is not valid HTTP');
    socket.end(() => socket.destroy());
    return;
  }
  // Only the request being parsed is incomplete: this response is the refused request's.
  if (!response.req.complete) {
    if (response.headersSent) socket.destroy();
    else {
      const path = pathOf(response.req.url);
      answerOnSocket(app, error, socket, path === undefined ? undefined : { method: response.req.method ?? 'UNKNOWN', path });
    }
    return;
  }
  // 'close' follows 'finish', by which Node has put the next pipelined response on the socket.
  response.once('close', () => guarded(socket, () => closeAfterAnswers(app, error, socket, responseOn(socket))));
}

function answerOnSocket(app: FastifyInstance, error: ClientError, socket: Socket, requestLine: { method: string; path: string } | undefined): void {
  const refusal = refusalFor(error);
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
  app.observeAnswer({ method, route: 'unmatched', statusCode: refusal.status }, 0);
  app.log.info(
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
