import { createHmac, randomUUID } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onSendHookHandler, preHandlerHookHandler, preValidationHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import { canonicalJson } from '../../application/audit/hash-chain.js';
import { deterministicUuid } from '../../application/ids.js';
import type { JsonValue } from '../../application/ports/event-store.js';
import type { Clock } from '../../application/ports/clock.js';
import { HttpProblem } from '../http/problem.js';
import type { IdempotencyClaim, PgIdempotencyStore } from './pg-idempotency-store.js';

export type IdempotencyOptions = {
  readonly store: PgIdempotencyStore;
  /** The server secret; request hashes are keyed with a key derived from it. */
  readonly secret: string;
  /**
   * Measures how long a request has held its claim, a span on this process alone. Leases and
   * expiry are not on it but on the database's clock: the processes' clocks may disagree.
   */
  readonly clock: Clock;
  readonly ttlHours: number;
  /**
   * How long a claim holds when its request never answers (the process died). Default 60 s. A
   * request that runs longer renews its lease every third of it, so no retry takes its key over.
   */
  readonly leaseMs?: number;
  /** Told of each stored answer replayed, with the route pattern it was replayed on (a metric). */
  readonly onReplay?: (route: string) => void;
};

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The id of the command this request carries: derived from the caller, its Idempotency-Key
     * and the request hash, so a retry gets the same one (and the command loop, deriving event
     * ids from it, appends nothing twice), even after the key has expired; a key reused later for
     * a different request gets a new one. A fresh UUID without a key, on a `'no-replay'` route, or
     * when a stored response of a credentials route is no longer replayed.
     */
    commandId: string;
    /** Set while this request holds a claimed key, until its response is stored or released. */
    idempotencyClaim: IdempotencyClaim | null;
    /**
     * HMAC of method, URL, If-Match and body as sent (before validation reshapes it), the body as
     * canonical JSON; null without a key, or on a route that takes none.
     */
    requestHash: string | null;
    /**
     * The user this request's answer is about, set by a handler when the key's scope does not
     * name them (signup: the user created; refresh: the token's owner). Stored on the key's row,
     * so that erasing that user deletes the answer too.
     */
    idempotencySubject: string | null;
  }
  interface FastifyContextConfig {
    /**
     * `false` on a POST that must not take the header (e.g. a webhook that dedupes by its own
     * event id). `'no-replay'` on a POST whose response carries credentials got with a password
     * (login): the key still answers 409 to the same body sent while the first is in flight (another
     * body runs as a request of its own), but the response is never stored and the key's row is deleted once it is sent, so every later
     * request runs afresh. Stored, the row would keep for its time to live a hash keyed by the
     * server secret of the password (a guessing oracle to whoever reads the table and holds the
     * secret), in an anonymous scope that erasure cannot find; and a retried login loses nothing
     * by running again: it opens another session. `{ replayable }` on a POST whose response
     * carries credentials that a retry must get back (token refresh): see `CredentialsIdempotency`.
     */
    idempotency?: false | 'no-replay' | CredentialsIdempotency;
    /**
     * Top-level body members left out of the request hash: secrets a person chose (signup's
     * password). Hashed, even keyed, the row would let whoever reads the table and holds the
     * server secret test a guess with one HMAC, skipping argon2. So a retry that differs only in
     * them is the same request, and is replayed.
     */
    idempotencyUnhashed?: readonly string[];
  }
}

/**
 * How a POST whose response carries credentials that a retry must get back (token refresh) keeps
 * its key. A client that lost the answer and retries under its key gets the refresh token it was
 * issued: run afresh instead, a refresh retried with its now rotated token would be taken for a
 * stolen token replayed, its family revoked and the client logged out. The answer is stored
 * sealed (AES-256-GCM, as the store keeps every response), for the same time to live, and:
 *
 * - It is replayed only within `credentialsReplayWindowMs` of being stored. After that the
 *   request runs afresh, its answer not stored: a refresh token already traded is reuse.
 * - The request hash is part of the key's scope: a caller here is anonymous, and only whoever
 *   sends the same body (the same refresh token, random and single use: no secret a person
 *   chose, so its hash is no guessing oracle) under the same key gets the replay, credentials
 *   they could get by refreshing anyway. A different body under the key is a new request that
 *   runs, not a 422.
 * - What is sent is what `replayable` makes of the stored body, never the stored body itself:
 *   the access token in it carries the roles of then, and less than its full lifetime.
 *   `undefined` (the refresh token in it is no longer its family's live one, or its owner is
 *   erased) runs the request afresh, its answer not stored. So a
 *   rotated refresh token sent again under its key, once the token it got has been used (or
 *   logged out), is reuse as ever, and revokes its family; a replay never hands out a token
 *   already spent, and the one it hands out stays single use.
 * - Only a 2xx is stored. A failed refresh lets its key go: its retry is checked again.
 */
export type CredentialsIdempotency = {
  /**
   * The body to answer a retry with, from the stored response body: its credentials as they
   * may be handed out now; `undefined` when they may not, and the request must run afresh.
   */
  readonly replayable: (stored: Buffer) => Promise<Buffer | undefined>;
};

/**
 * How long after a credentials answer was stored (on the database's clock) a retry under its key
 * gets it back: enough for a client that lost the answer to retry (a timeout, a reconnect). Not
 * the key's time to live: whoever held a spent refresh token and its key would get the family's
 * live pair for a day, and its reuse would go undetected. Past the window the request runs
 * afresh, so a dead token is reuse as ever: 401, its family revoked, a security event recorded.
 */
const credentialsReplayWindowMs = 60_000;

function credentialsRoute(request: FastifyRequest): CredentialsIdempotency | undefined {
  const { idempotency } = request.routeOptions.config;
  return typeof idempotency === 'object' ? idempotency : undefined;
}

const noReplay = (request: FastifyRequest): boolean => request.routeOptions.config.idempotency === 'no-replay';

export const idempotencyKeyHeaderSchema = z
  .string()
  .min(1)
  .max(255)
  .optional()
  .describe('Any unique string (a UUID is ideal); a repeat with the same body returns the stored response');

/** The response headers that are part of the answer; request-scoped ones (X-Request-Id) are not. */
const storedHeaders = ['content-type', 'etag', 'event-position', 'location'];

function isPost(method: string | string[]): boolean {
  return Array.isArray(method) ? method.includes('POST') : method === 'POST';
}

/**
 * The body as hashed, when a parser made something of it: canonical JSON, so that the same body
 * written out by another client, its members in another order, is the same request. This runs
 * before validation: a body nested deeper than the stack allows (any JSON parser takes it)
 * cannot be written back, and is refused as the validation would.
 */
function bodyText(body: unknown): string {
  try {
    // Our parsers make JSON or raw bytes (hashed as they are); anything else is hashed as before.
    return isJsonValue(body) ? canonicalJson(body) : JSON.stringify(body);
  } catch {
    const errors = [{ path: 'body', message: 'is nested too deeply' }];
    throw new HttpProblem(400, 'validation-failed', 'Validation failed', 'The request does not match its schema', { extensions: { errors } });
  }
}

/**
 * A parsed JSON object body without `names` (see `idempotencyUnhashed`); any other body as it is.
 * Shallow: a body nested too deeply is left for `bodyText` to refuse.
 */
function withoutMembers(body: unknown, names: readonly string[]): unknown {
  if (names.length === 0 || typeof body !== 'object' || body === null || Object.getPrototypeOf(body) !== Object.prototype) return body;
  return Object.fromEntries(Object.entries(body).filter(([name]) => !names.includes(name)));
}

/** What the JSON parser makes: plain objects, arrays and primitives, nothing with a prototype of its own. */
function isJsonValue(value: unknown): value is JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return true;
  if (Array.isArray(value)) return value.every(isJsonValue);
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value).every(isJsonValue);
}

const plugin: FastifyPluginAsync<IdempotencyOptions> = async (app, options) => {
  const { store, clock } = options;
  const leaseMs = options.leaseMs ?? 60_000;
  // Longer than any request can run: the payment provider's client gives up after 4 tries of 20 s.
  const maxHoldMs = Math.max(leaseMs, 10 * 60_000);
  const ttlMs = options.ttlHours * 3_600_000;
  const replayed = (route: string, reply: FastifyReply, response: StoredAnswer): FastifyReply => {
    options.onReplay?.(route);
    return replay(reply, response);
  };
  // Keyed, not a bare SHA-256: a body may hold a password, and a plain hash of it would be a
  // fast offline guessing oracle for anyone who can read this table.
  const hashKey = createHmac('sha256', options.secret).update('idempotency-request-hash').digest();
  const keyedHash = (head: string, body: Buffer | string | undefined) => {
    const hash = createHmac('sha256', hashKey).update(head);
    return (body === undefined ? hash : hash.update(body)).digest('hex');
  };
  // Each keyed request's hash by the formula of the keys claimed before the hash covered If-Match
  // and sorted the body (method, URL and the body as sent), made only when such a key is found:
  // not on every request's path. Remove it (and `claim`'s `legacyHash`) once the last of those
  // keys has expired, IDEMPOTENCY_TTL_HOURS after this version's deploy.
  const legacyHashes = new WeakMap<FastifyRequest, () => string>();
  let claimsSinceSweep = 0;

  app.decorateRequest('commandId', '');
  app.decorateRequest('idempotencyClaim', null);
  app.decorateRequest('requestHash', null);
  app.decorateRequest('idempotencySubject', null);

  app.addHook('onRequest', async (request) => {
    request.commandId = randomUUID();
  });

  // Only on the routes that take the key: elsewhere (the Stripe webhook, unsigned until its
  // handler checks) hashing a body is work anyone could make this process do for nothing.
  const fingerprint: preValidationHookHandler = async function (request) {
    if (request.headers['idempotency-key'] === undefined) return;
    // The version a request pins is part of what it asks: a corrected If-Match under the key of a
    // refused request is another request (422), not a retry to replay the stale 412 to. It goes
    // first, where no method can start, so that without it the input is what it was before the
    // hash covered If-Match and sorted the body: a request without If-Match whose members were in
    // canonical order hashes as it did then, so its command id is unchanged even after expiry.
    const ifMatch = request.headers['if-match'];
    const precondition = ifMatch === undefined ? '' : `If-Match: ${ifMatch}\n`;
    const head = `${request.method}\n${request.url}\n`;
    // Raw bytes as they are: written out as JSON, a Buffer becomes an array of numbers, five
    // times its size and slow to make.
    const { body } = request;
    const raw = Buffer.isBuffer(body) || body === undefined;
    const hashed = raw ? body : bodyText(withoutMembers(body, request.routeOptions.config.idempotencyUnhashed ?? []));
    request.requestHash = keyedHash(precondition + head, hashed);
    // The body as sent: validation hands the handler a new object, and leaves this one be.
    legacyHashes.set(request, () => keyedHash(head, raw ? body : JSON.stringify(body)));
  };

  const claimKey: preHandlerHookHandler = async function (request, reply) {
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string' || request.requestHash === null) return;
    const route = request.routeOptions.url ?? request.url;
    const caller = request.actor?.id ?? `anonymous:${request.method} ${route}`;
    const credentials = credentialsRoute(request);
    // On a route that answers with credentials only the same body under the key finds its row: a
    // stored answer (see `CredentialsIdempotency`), or one in flight. Another body claims a row of
    // its own and runs: told apart from the same body (422 against 409), a guessed password
    // would learn whether it is the one in flight, before the password check, uncounted.
    const id = { scope: credentials || noReplay(request) ? `${caller} ${request.requestHash}` : caller, key };
    const claim = await store.claim(id, request.requestHash, { leaseMs, ttlMs }, legacyHashes.get(request));
    if (claim.outcome === 'mismatch') throw keyReused();
    if (claim.outcome === 'in_flight') throw keyInFlight();
    if (claim.outcome === 'completed') {
      // On a `'no-replay'` route, a completed row was stored before the route was marked: it is
      // not replayed, and expires with its time to live; the request runs afresh.
      if (noReplay(request)) return;
      if (!credentials) return replayed(route, reply, claim.response);
      // Past the window for a lost answer, the request runs afresh, like one whose credentials are spent.
      if (claim.answeredMsAgo > credentialsReplayWindowMs) return;
      // Credentials spent since are not handed out again: the request runs afresh, with a random
      // command id, unstored (the key's row keeps the old answer until it expires).
      const body = await credentials.replayable(claim.response.body);
      if (body === undefined) return;
      return replayed(route, reply, { ...claim.response, body });
    }
    holdClaim(request, { ...id, token: claim.token });
    // A `'no-replay'` request runs afresh, with its random command id.
    if (noReplay(request)) return;
    // With the request hash in it, the id outlives the key: the same request after expiry is
    // still the same command, and a different one under a reused key is a new command.
    // A key claimed under the legacy hash keeps the command id it was claimed with, so the retry
    // of a request that died finds the events it appended.
    request.commandId = deterministicUuid('idempotency', id.scope, id.key, claim.legacyHash ?? request.requestHash);
    if ((claimsSinceSweep += 1) >= 100) {
      claimsSinceSweep = 0;
      store.sweep().catch((error: unknown) => request.log.warn({ err: error }, 'idempotency sweep failed'));
    }
  };

  // Renewals of the claims of requests still running, by request.
  const renewals = new WeakMap<FastifyRequest, NodeJS.Timeout>();

  /**
   * The claim is this request's until its response is stored or it is released, renewed for at
   * most `maxHoldMs`: a request hung longer than any dependency's timeouts allow lets its key go.
   */
  function holdClaim(request: FastifyRequest, claim: IdempotencyClaim): void {
    request.idempotencyClaim = claim;
    const until = clock.now().getTime() + maxHoldMs;
    const renewal = setInterval(() => {
      if (clock.now().getTime() >= until) return letGo(request);
      store.renew(claim, leaseMs).then(
        // Taken over after all (a renewal came too late): no longer ours to renew.
        (renewed) => renewed || letGo(request),
        (error: unknown) => request.log.warn({ err: error }, 'idempotency lease renewal failed'),
      );
    }, Math.max(1, Math.floor(leaseMs / 3)));
    // A process that is going down leaves its claims to their leases.
    renewal.unref();
    renewals.set(request, renewal);
  }

  function letGo(request: FastifyRequest): void {
    clearInterval(renewals.get(request));
    renewals.delete(request);
  }

  // Stored before the response leaves, so a client's immediate retry finds it (not a 409).
  const storeResponse: onSendHookHandler = async function (request, reply, payload) {
    const id = request.idempotencyClaim;
    if (!id) return payload;
    request.idempotencyClaim = null;
    letGo(request);
    // A failure of ours (5xx) is the client's to retry; on a credentials route, so is every
    // failure. Release deletes the row: a `'no-replay'` route's request hash goes with it.
    const storable = !noReplay(request) && reply.statusCode < (credentialsRoute(request) ? 300 : 500);
    if (!storable || !(typeof payload === 'string' || Buffer.isBuffer(payload) || payload == null)) {
      await store.release(id);
      return payload;
    }
    const headers: Record<string, string> = {};
    for (const name of storedHeaders) {
      const value = reply.getHeader(name);
      if (value !== undefined) headers[name] = String(value);
    }
    const body = payload == null ? Buffer.alloc(0) : Buffer.from(payload);
    await store.complete(id, { status: reply.statusCode, headers, body }, request.idempotencySubject);
    return payload;
  };

  app.addHook('onSend', storeResponse);
  // However a request ends, its renewals end with it.
  app.addHook('onResponse', async (request) => letGo(request));

  // Every POST route gets the header in its schema (validated, and shown in /docs), the request
  // hash as its first preValidation hook (the body as sent, before validation reshapes it), and
  // the claim as its last preHandler: after authentication, whose actor scopes the key, and after
  // role checks, so a refused request does not use up the key.
  app.addHook('onRoute', (route) => {
    if (!isPost(route.method) || route.config?.idempotency === false) return;
    const headers = route.schema?.headers;
    const keyHeader = { 'idempotency-key': idempotencyKeyHeaderSchema };
    const extended = headers instanceof z.ZodObject ? headers.extend(keyHeader) : headers === undefined ? z.object(keyHeader) : headers;
    route.schema = { ...route.schema, headers: extended };
    const ownValidation = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [fingerprint, ...ownValidation];
    const own = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
    route.preHandler = [...own, claimKey];
  });
};

function keyReused(): HttpProblem {
  const detail = 'This Idempotency-Key was already used for a different request';
  return new HttpProblem(422, 'idempotency-key-reused', 'Idempotency key reused', detail);
}

function keyInFlight(): HttpProblem {
  const detail = 'A request with this Idempotency-Key is still being processed; retry shortly';
  return new HttpProblem(409, 'idempotency-key-in-flight', 'Request in progress', detail, { headers: { 'retry-after': '1' } });
}

type StoredAnswer = { status: number; headers: Readonly<Record<string, string>>; body: Buffer };

function replay(reply: FastifyReply, response: StoredAnswer): FastifyReply {
  return reply.code(response.status).headers(response.headers).header('idempotent-replayed', 'true').send(response.body);
}

/** `Idempotency-Key` on every POST: see API.md, "Idempotency". */
export const idempotencyPlugin = fp(plugin, { name: 'idempotency' });
