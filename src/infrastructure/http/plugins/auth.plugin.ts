import jwt from '@fastify/jwt';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import { hasAnyRole } from '../../../application/authorization/actors.js';
import { roleSchema, type Actor, type Role } from '../../../application/metadata.js';
import { privilegedRoles } from '../../../domain/user/user.events.js';
import { HttpProblem } from '../problem.js';
import { bearerChallenge } from './error-handler.plugin.js';

export type AuthOptions = {
  /** HS256 key, at least 32 characters. */
  readonly secret: string;
  readonly issuer: string;
  readonly audience: string;
  /** Lifetime of an access token. */
  readonly accessTokenTtlSeconds: number;
  /**
   * The roles of a token that its user still holds, asked of tokens naming ADMIN or AUDITOR;
   * unset, tokens are taken as they say.
   */
  readonly currentRoles?: (actor: Actor) => Promise<Role[]>;
  /**
   * Whether a token's subject was erased (within a token's lifetime: no older token is alive),
   * asked of every token, so it must answer from memory; unset, none is.
   */
  readonly isErased?: (subjectId: string) => boolean;
};

export type AccessToken = { readonly accessToken: string; readonly expiresIn: number };

declare module 'fastify' {
  interface FastifyRequest {
    /** Who called, once `requireAuth`, `requireRoles` or `optionalAuth` established it; else `null`. */
    actor: Actor | null;
  }
  interface FastifyInstance {
    /** Signs an access token for `actor` with this API's issuer, audience and lifetime. */
    issueAccessToken(actor: Actor): AccessToken;
    /** `AuthOptions.currentRoles`. */
    currentRolesOf(actor: Actor): Promise<Role[]>;
    /** `AuthOptions.isErased`. */
    isErasedSubject(subjectId: string): boolean;
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string; roles: Role[] };
  }
}

/** The claims an access token must carry besides a valid signature, `iss`, `aud`, `iat` and `exp`. */
const accessTokenClaims = z.object({ sub: z.string().min(1), roles: z.array(roleSchema) });

const unauthorized = (detail: string) =>
  new HttpProblem(401, 'unauthorized', 'Unauthorized', detail, { headers: { 'www-authenticate': `${bearerChallenge}, error="invalid_token"` } });

/** The token of `Authorization: Bearer <token>`, as @fastify/jwt reads it; `undefined` for any other shape. */
function bearerToken(authorization: string): string | undefined {
  const [scheme, token, ...rest] = authorization.split(' ');
  return rest.length === 0 && scheme !== undefined && /^Bearer$/i.test(scheme) && token ? token : undefined;
}

/**
 * Verifies the bearer token and sets `request.actor`; any flaw is the same 401 but for expiry,
 * which a client acts on. It calls the plugin's verifier (`app.jwt.verify`, its cache included)
 * rather than `request.jwtVerify()`, which decodes every token once more to find a key we do
 * not look up and runs a chain of callbacks around the same verifier.
 */
async function authenticate(request: FastifyRequest): Promise<Actor> {
  if (request.actor) return request.actor;
  const authorization = request.headers.authorization;
  if (!authorization) throw unauthorized('An access token is required: Authorization: Bearer <token>');
  const token = bearerToken(authorization);
  if (token === undefined) throw unauthorized('The access token is invalid');
  let payload: unknown;
  try {
    payload = request.server.jwt.verify(token);
  } catch (error) {
    const expired = error instanceof Error && 'code' in error && error.code === 'FAST_JWT_EXPIRED';
    throw unauthorized(expired ? 'The access token has expired' : 'The access token is invalid');
  }
  const claims = accessTokenClaims.safeParse(payload);
  if (!claims.success) throw unauthorized('The access token is invalid');
  // Erasure deletes the person's sessions, but a token signed before it would act, and read their
  // data, until it expired: every role acts on its holder's own things at least.
  if (request.server.isErasedSubject(claims.data.sub)) throw unauthorized('The account of this access token was erased');
  const actor = { id: claims.data.sub, roles: claims.data.roles };
  // A token outlives its admin's erasure or demotion by up to its lifetime; the powers over
  // everyone else's bookings, money and history must not. The other roles act on their holder's
  // own things, and are taken as the token says, sparing every ordinary request a lookup.
  request.actor = hasAnyRole(actor, privilegedRoles) ? { ...actor, roles: await request.server.currentRolesOf(actor) } : actor;
  return request.actor;
}

/**
 * The route hooks below run at `onRequest`, before the body is read and validated: a caller
 * without the right token hears 401 or 403, not what is wrong with its body or query (API.md),
 * and a refused read is recorded as denied.
 */

/** onRequest: a valid access token is required. */
export async function requireAuth(request: FastifyRequest): Promise<void> {
  await authenticate(request);
}

/** onRequest: a valid access token holding at least one of `roles` (401 without one, 403 with the wrong roles). */
export function requireRoles(...roles: Role[]): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const actor = await authenticate(request);
    if (!hasAnyRole(actor, roles)) throw new HttpProblem(403, 'forbidden', 'Forbidden', `This needs one of the roles ${roles.join(', ')}`);
  };
}

/** onRequest: anonymous callers are welcome, but a token that is sent must be valid. */
export async function optionalAuth(request: FastifyRequest): Promise<void> {
  if (request.headers.authorization !== undefined) await authenticate(request);
}

/**
 * Access tokens: HS256 only (pinned on both sides, so `alg: none` and algorithm swaps fail),
 * issuer and audience checked, `sub`, `iat` and `exp` required.
 */
const auth: FastifyPluginAsync<AuthOptions> = async (app, options) => {
  await app.register(jwt, {
    secret: options.secret,
    sign: { algorithm: 'HS256', iss: options.issuer, aud: options.audience, expiresIn: options.accessTokenTtlSeconds },
    verify: {
      algorithms: ['HS256'],
      allowedIss: options.issuer,
      allowedAud: options.audience,
      requiredClaims: ['sub', 'iss', 'aud', 'iat', 'exp'],
      // A client sends the same token with every request until it expires: a verified token is
      // remembered (keyed by its hash, never past its `exp`) rather than verified again each time.
      cache: 10_000,
    },
  });
  app.decorateRequest('actor', null);
  app.decorate('currentRolesOf', options.currentRoles ?? (async (actor: Actor) => [...actor.roles]));
  app.decorate('isErasedSubject', options.isErased ?? (() => false));
  app.decorate('issueAccessToken', (actor: Actor): AccessToken => ({
    accessToken: app.jwt.sign({ sub: actor.id, roles: actor.roles }),
    expiresIn: options.accessTokenTtlSeconds,
  }));
};

export const authPlugin = fp(auth, { name: 'auth' });
