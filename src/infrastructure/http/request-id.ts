import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** What we accept as a caller's id: short, and harmless in a log line or a header. */
export const externalIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** W3C Trace Context: version, 32-hex trace id (not all zeros), 16-hex parent id, flags. */
const traceparentPattern = /^[\da-f]{2}-(?!0{32})([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/;

/**
 * Fastify's `genReqId`: the caller's `X-Request-Id` when it is a sane id, else the trace id of
 * a W3C `traceparent` (so our logs join the caller's trace), else a fresh UUID. Fastify's own
 * `requestIdHeader` is left off because it would take any header value unchecked.
 */
export function requestIdFor(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  if (typeof given === 'string' && externalIdPattern.test(given)) return given;
  const traceparent = request.headers.traceparent;
  const traceId = typeof traceparent === 'string' ? traceparentPattern.exec(traceparent.trim().toLowerCase())?.[1] : undefined;
  return traceId ?? randomUUID();
}
