import type { FastifyError, FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { TooMuchContentionError, VersionMismatchError } from '../../../application/command-handling/errors.js';
import { AccountLockedError, AuthenticationError } from '../../../application/identity/identity-errors.js';
import { ConcurrencyError } from '../../../application/ports/event-store.js';
import { DomainError } from '../../../domain/shared/domain-error.js';
import { refusalHeaders } from '../command-result.js';
import { HttpProblem, problemDocument, sendProblem } from '../problem.js';
import { ProviderRefusedError, ProviderUnavailableError } from '../../../application/ports/payment-gateway.js';
import { KeyStoreUnavailableError } from '../../../application/privacy/personal-data-vault.js';
import { isSqlState, undefinedTable } from '../../../projections/shared/read-across-generations.js';

/** `WWW-Authenticate` must come with every 401 (RFC 9110 §11.6.1). */
export const bearerChallenge = 'Bearer realm="bookable"';

const sentenceCase = (code: string) => code.charAt(0).toUpperCase() + code.slice(1).replaceAll('-', ' ');

/** Fastify's own 4xx errors that deserve a named problem type; its other 4xx keep their status. */
const fastifyCodes: Record<string, { code: string; title: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'payload-too-large', title: 'Payload too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported-media-type', title: 'Unsupported media type' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'malformed-body', title: 'Malformed body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'malformed-body', title: 'Malformed body' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'malformed-body', title: 'Malformed body' },
};

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && 'statusCode' in error && typeof error.statusCode === 'number';
}

/**
 * `body.roles.0` from the validation context and the JSON pointer of the failing value. Zod
 * reports unknown keys of a strict object once, at the object, listing them: each becomes an
 * entry of its own at its key (`querystring.categroy`), so a typo is named where it was made.
 */
function validationErrors(error: FastifyError): { path: string; message: string }[] {
  const context = error.validationContext ?? 'request';
  const unknown = context === 'querystring' ? 'unknown parameter' : 'unknown field';
  return (error.validation ?? []).flatMap((issue) => {
    const path = [context, ...issue.instancePath.split('/').filter((part) => part.length > 0)];
    const keys = issue.keyword === 'unrecognized_keys' ? issue.params['keys'] : undefined;
    if (Array.isArray(keys)) return keys.map((key) => ({ path: [...path, String(key)].join('.'), message: unknown }));
    return [{ path: path.join('.'), message: issue.message ?? 'is invalid' }];
  });
}

/**
 * A relation of a read schema (`rm_<name>.<table>`, see `readSchema`) in PostgreSQL's message,
 * quoted however the server's language quotes it: the error carries no schema field at parse time.
 */
const readSchemaRelation = /\brm_[a-z0-9_]+\./;

const readModelNotReadyCode = 'read-model-not-ready';

/**
 * A read model whose tables do not exist yet: no projector has built its first generation (a
 * fresh database, the query role started first) or published the table this code reads. Gone
 * once a projector catches up, as `/health/ready` says meanwhile; not a fault of the request.
 */
function readModelNotReady(error: unknown): HttpProblem | undefined {
  if (!(error instanceof Error) || !isSqlState(error, undefinedTable) || !readSchemaRelation.test(error.message)) return undefined;
  const detail = 'The read model this answer comes from has not been built yet; try again shortly';
  return new HttpProblem(503, readModelNotReadyCode, 'Read model not ready', detail, { headers: { 'retry-after': '5' } });
}

/** Maps anything thrown to the one problem that answers it, or `undefined` for a 500. */
function toHttpProblem(error: unknown): HttpProblem | undefined {
  if (error instanceof HttpProblem) return error;
  const notBuilt = readModelNotReady(error);
  if (notBuilt) return notBuilt;
  if (error instanceof DomainError) {
    if (error.code === 'not-found') return new HttpProblem(404, 'not-found', 'Not found', error.message);
    if (error.code === 'forbidden') return new HttpProblem(403, 'forbidden', 'Forbidden', error.message);
    return new HttpProblem(409, error.code, sentenceCase(error.code), error.message, error.details && { extensions: error.details });
  }
  if (error instanceof VersionMismatchError) {
    const extensions = { expectedVersion: error.expected, actualVersion: typeof error.actual === 'number' ? error.actual : null };
    return new HttpProblem(412, 'version-mismatch', 'Version mismatch', error.message, { extensions });
  }
  if (error instanceof TooMuchContentionError) {
    const detail = 'Too many concurrent changes to the same resource; try again';
    return new HttpProblem(503, 'too-much-contention', 'Too much contention', detail, { headers: { 'retry-after': '1' } });
  }
  if (error instanceof ConcurrencyError) {
    return new HttpProblem(409, 'concurrent-modification', 'Concurrent modification', 'The resource changed meanwhile; try again');
  }
  // The provider's refusal or outage is a gateway's failure, not the caller's: 502 / 503, logged as errors.
  if (error instanceof ProviderRefusedError) {
    return new HttpProblem(502, 'payment-provider-refused', 'Payment provider refused', `The payment provider refused the request (${error.code})`);
  }
  // A passing fault of the personal-data key store (a command loading a stream, an audit read).
  if (error instanceof KeyStoreUnavailableError) {
    const detail = 'The personal-data key store did not answer; try again';
    return new HttpProblem(503, 'key-store-unavailable', 'Key store unavailable', detail, { headers: { 'retry-after': '1' } });
  }
  if (error instanceof ProviderUnavailableError) {
    const detail = 'The payment provider could not be reached; try again';
    return new HttpProblem(503, 'payment-provider-unavailable', 'Payment provider unavailable', detail, { headers: { 'retry-after': '5' } });
  }
  if (error instanceof AuthenticationError) {
    return new HttpProblem(401, error.code, sentenceCase(error.code), error.message, { headers: { 'www-authenticate': bearerChallenge } });
  }
  if (error instanceof AccountLockedError) {
    const headers = { 'retry-after': String(error.retryAfterSeconds) };
    return new HttpProblem(429, 'account-locked', 'Account locked', error.message, { headers });
  }
  if (!isFastifyError(error) || error.statusCode === undefined || error.statusCode >= 500) return undefined;
  if (error.validation) {
    const extensions = { errors: validationErrors(error) };
    return new HttpProblem(400, 'validation-failed', 'Validation failed', 'The request does not match its schema', { extensions });
  }
  const known = fastifyCodes[error.code];
  if (known) return new HttpProblem(error.statusCode, known.code, known.title, error.message);
  return new HttpProblem(error.statusCode, 'bad-request', 'Bad request', error.message);
}

function internalError(request: FastifyRequest): HttpProblem {
  const detail = `An unexpected error occurred; quote request id ${request.id} when reporting it`;
  return new HttpProblem(500, 'internal-error', 'Internal server error', detail);
}

/**
 * The one place errors become answers: every error, from the domain, a plugin or fastify
 * itself, leaves as `application/problem+json`. Details of a 500 go to the log only.
 */
const errorHandler: FastifyPluginAsync = async (app) => {
  app.setErrorHandler((error, request, reply) => {
    const problem = toHttpProblem(error) ?? internalError(request);
    // A 5xx we answer on purpose (stopping, shedding, not caught up or built yet) is no failure of ours.
    const onPurpose = error instanceof HttpProblem || problem.code === readModelNotReadyCode;
    if (problem.status >= 500 && !onPurpose) request.log.error({ err: error }, 'request failed');
    else request.log.info({ problem: problem.code, detail: problem.message }, 'request refused');
    const { status, code, title, message: detail, options } = problem;
    const headers = { ...options.headers, ...refusalHeaders(error) };
    return sendProblem(reply, problemDocument(request, { status, code, title, detail, extensions: options.extensions }), headers);
  });

  app.setNotFoundHandler((request, reply) => {
    const detail = `There is no route for ${request.method} ${request.url.split('?')[0] ?? ''}`;
    return sendProblem(reply, problemDocument(request, { status: 404, code: 'not-found', title: 'Not found', detail }));
  });
};

export const errorHandlerPlugin = fp(errorHandler, { name: 'error-handler' });
