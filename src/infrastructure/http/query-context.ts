import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Actor } from '../../application/metadata.js';
import type { Clock } from '../../application/ports/clock.js';
import { formatPosition, parsePosition } from '../../application/ports/position.js';
import { notPrintable, printable } from '../../domain/shared/printable-text.js';
import { sortKeyNameLength } from '../../projections/doctors/doctors.queries.js';
import type { Database } from '../../projections/read-models.js';
import { waitForPosition, type CheckpointNotifications } from '../../projections/runtime/wait-for-position.js';
import { wholeNumberText } from '../whole-number-text.js';
import { HttpProblem } from './problem.js';
import type { QueryCache, Stamp } from './query-cache.js';

/**
 * Cursors are opaque: base64url of the last row's sort key, and a MAC over it and the query it
 * came from (route, caller, filters). A cursor that was garbled, forged, or lifted from another
 * query or another caller is refused with 400 instead of being trusted; and since it carries only
 * a sort key, ANDed onto the caller's own filter, it could never widen what the caller may read.
 */
export class CursorCodec {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHmac('sha256', secret).update('bookable query cursor').digest();
  }

  encode(scope: string, sortKey: unknown): string {
    const body = Buffer.from(JSON.stringify(sortKey)).toString('base64url');
    return `${body}.${this.mac(scope, body).toString('base64url')}`;
  }

  decode<Key>(scope: string, cursor: string, schema: z.ZodType<Key>): Key {
    const [body, mac, extra] = cursor.split('.');
    if (body === undefined || mac === undefined || extra !== undefined) throw invalidCursor();
    const given = Buffer.from(mac, 'base64url');
    const expected = this.mac(scope, body);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalidCursor();
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      throw invalidCursor();
    }
    const key = schema.safeParse(parsed);
    if (!key.success) throw invalidCursor();
    return key.data;
  }

  private mac(scope: string, body: string): Buffer {
    return createHmac('sha256', this.key).update(scope).update('\u0000').update(body).digest().subarray(0, 16);
  }
}

/** A validation failure of `?cursor=`, so `errors` names it as API.md asks; the type says which. */
const invalidCursor = () =>
  new HttpProblem(400, 'invalid-cursor', 'Invalid cursor', 'The cursor is not one this query handed out; start again without it', {
    extensions: { errors: [{ path: 'querystring.cursor', message: 'not a cursor this query handed out' }] },
  });

/**
 * Bytes of JSON in the largest sort key any route pages by: the doctors' (`DoctorSortKey`), a name
 * cut to its first 200 code points and an id of at most 200 UTF-16 units, each of them at most 6
 * bytes (JSON writes a control character `\u0001`). The other routes' keys hold an instant, a
 * position or a number, and at most one id of 200.
 */
const maxSortKeyBytes = JSON.stringify({ name: '', doctorId: '' }).length + 6 * (sortKeyNameLength + 200);

/**
 * The longest cursor `CursorCodec.encode` hands out, so that every one it issued comes back in:
 * base64url without padding (4 characters for 3 bytes), a dot, and the 16-byte MAC's 22.
 */
const maxCursorLength = Math.ceil((maxSortKeyBytes * 4) / 3) + 1 + 22;

/**
 * `?limit=` and `?cursor=` of every list (API.md "Pagination"). Strict, as every query string is,
 * and so is each `.extend` of it: a parameter no route knows (a misspelt filter) is refused with
 * 400 rather than answered with the unfiltered list.
 */
export const pageQuery = z.strictObject({
  limit: wholeNumberText(1, 100).default(20).describe('Items per page, 1–100'),
  cursor: z.string().min(1).max(maxCursorLength).optional().describe('`nextCursor` of the previous page, as given'),
});

export function pageSchema<Item extends z.ZodType>(item: Item) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable().describe('null on the last page') });
}

/** Documents `Consistency-Position`, and answers a malformed one with 400 before anything waits. */
export const consistencyHeaders = z.looseObject({
  'consistency-position': z
    .string()
    .refine((value) => parsePosition(value.trim()) !== undefined, 'must be a position as `Event-Position` gives it, e.g. 1042.1042')
    .optional()
    .describe('Wait until the read models behind this endpoint have processed this position (read-your-writes)'),
});

export type ConsistencyOptions = {
  readonly db: Kysely<unknown>;
  readonly notifications: CheckpointNotifications;
  readonly timeoutMs: number;
};

/**
 * preHandler for read-your-writes: with a `Consistency-Position`, waits (woken by the
 * checkpoints' NOTIFY, not by polling) until every named projection has processed it; past the
 * wait, 503 with `Retry-After`.
 */
export function consistentWith(options: ConsistencyOptions, projections: readonly string[]) {
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers['consistency-position'];
    if (header === undefined) return;
    const position = typeof header === 'string' ? parsePosition(header.trim()) : undefined;
    if (!position) {
      throw new HttpProblem(400, 'invalid-consistency-position', 'Invalid Consistency-Position', 'Consistency-Position must be one position as `Event-Position` gives it');
    }
    const reached = await waitForPosition({ db: options.db, notifications: options.notifications, projections, position, timeoutMs: options.timeoutMs });
    if (!reached) {
      throw notCaughtUp(`The read models have not reached ${formatPosition(position)} within ${options.timeoutMs} ms; try again shortly`);
    }
  };
}

/** Answers `cachedRead` let through to their handler, to be kept once serialized. */
const answersToKeep = new WeakMap<FastifyRequest, { readonly key: string; readonly projections: readonly string[]; readonly stamp: Stamp }>();

/**
 * preHandler of an endpoint whose answer depends on nothing but these projections' read models,
 * the URL and the caller (no clock, no event log): `consistentWith`'s, and the query cache's.
 * A request without `Consistency-Position` gets the answer kept from an earlier one when the
 * read models have not committed since; any other reads them, and keeps what it read. One that
 * waited for a position never takes a kept answer: the checkpoint it waited on may be visible
 * before its announcement has reached the cache.
 */
export type CachedReadOptions = {
  /** Whether this request's answer may be kept and served again; default: every one. */
  readonly cacheable?: (request: FastifyRequest) => boolean;
  /**
   * The answer is the same whoever asks (a public route): one kept answer serves everyone, signed
   * in or not, where otherwise each caller gets their own.
   */
  readonly sameForEveryone?: boolean;
};

export function cachedRead(options: ConsistencyOptions, cache: QueryCache, projections: readonly string[], { cacheable = () => true, sameForEveryone = false }: CachedReadOptions = {}) {
  const consistent = consistentWith(options, projections);
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const waits = request.headers['consistency-position'] !== undefined;
    if (waits) await consistent(request);
    if (!cacheable(request)) return undefined;
    // The route and query string, and the caller when the route knows one (its answer may depend on it).
    const caller = request.actor && !sameForEveryone ? `${request.actor.id}\u0000${request.actor.roles.join(',')}` : '';
    const key = `${request.method} ${request.url}\u0000${caller}`;
    const kept = waits ? undefined : cache.get(key);
    if (kept !== undefined) return reply.type('application/json; charset=utf-8').send(kept);
    const stamp = cache.stamp(projections);
    if (stamp) answersToKeep.set(request, { key, projections, stamp });
    return undefined;
  };
}

/** onSend hook of the query API: keeps the successful answers `cachedRead` let through. */
export function keepCachedAnswers(cache: QueryCache) {
  return async (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const answer = answersToKeep.get(request);
    if (answer && reply.statusCode === 200 && typeof payload === 'string') cache.set(answer.key, answer.projections, answer.stamp, payload);
    return payload;
  };
}

/** What every query routes plugin is given. */
export type QueryRoutesOptions = {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly cursors: CursorCodec;
  /** The read-your-writes preHandler for an endpoint that reads these projections. */
  readonly consistentWith: (projections: readonly string[]) => (request: FastifyRequest) => Promise<void>;
  /** The same, answering from the query cache where it can (see `cachedRead`). */
  readonly cachedRead: (projections: readonly string[], options?: CachedReadOptions) => (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;
};

/**
 * Binds a cursor to the query it continues: the route, the caller (anonymous: empty) and the
 * filters as parsed, so it cannot be replayed elsewhere.
 */
export function cursorScope(route: string, callerId: string | undefined, filter: object): string {
  return `${route}\u0000${callerId ?? ''}\u0000${JSON.stringify(filter)}`;
}

/** Decodes `cursor` (if any) for `scope`, runs the page query, and wraps its `next` key again. */
export async function paged<Item, Key>(
  cursors: CursorCodec,
  scope: string,
  page: { readonly limit: number; readonly cursor?: string | undefined },
  keySchema: z.ZodType<Key>,
  query: (request: { limit: number; after?: Key | undefined }) => Promise<{ items: Item[]; next: Key | null }>,
): Promise<{ items: Item[]; nextCursor: string | null }> {
  const after = page.cursor === undefined ? undefined : cursors.decode(scope, page.cursor, keySchema);
  const result = await query({ limit: page.limit, after });
  return { items: result.items, nextCursor: result.next === null ? null : cursors.encode(scope, result.next) };
}

/** A missing resource, or one the caller may not know about (API.md: 404, not 403). */
/** 503: what the answer must include is not readable yet; a retry in a moment will find it. */
export function notCaughtUp(detail: string): HttpProblem {
  return new HttpProblem(503, 'not-caught-up', 'Not caught up yet', detail, { headers: { 'retry-after': '1' } });
}

export function notFound(what: string): HttpProblem {
  return new HttpProblem(404, 'not-found', 'Not found', `There is no ${what}`);
}

/** The caller a `requireAuth`/`requireRoles` hook established. */
export function callerOf(request: FastifyRequest): Actor {
  if (!request.actor) throw new HttpProblem(401, 'unauthorized', 'Unauthorized', 'An access token is required');
  return request.actor;
}

/** Free text in a query string (a filter value), up to `max` characters. */
export function textParam(max: number) {
  return z.string().min(1).max(max).regex(printable, notPrintable);
}

/** `{ id }` path parameters. */
export const idParams = z.object({ id: textParam(200) });
