import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { IdentityService, Session } from '../../../application/identity/identity.service.js';
import { roleSchema } from '../../../application/metadata.js';
import { notPrintable, printable } from '../../../domain/shared/printable-text.js';
import { commandContext } from '../command-context.js';
import { commandResultSchema, noIfMatchHeaderSchema, sendCommandResult } from '../command-result.js';
import type { CredentialsIdempotency } from '../../idempotency/idempotency.plugin.js';
import { optionalAuth, requireAuth } from '../plugins/auth.plugin.js';

// Upper bounds on secrets keep a request from buying minutes of argon2 time.
const password = z.string().max(1024);

const signupBody = z
  .object({
    email: z.email().max(254),
    // Characters as the password is checked (NFKC, see the identity service), not UTF-16 units:
    // "é" typed as "e" and an accent, or an emoji, counted twice.
    password: password
      .refine((text) => [...text.normalize('NFKC')].length >= 12, 'must be at least 12 characters')
      .describe('12 to 1024 characters'),
    name: z.string().trim().min(1).max(200).regex(printable, notPrintable),
    roles: z.array(roleSchema).min(1).describe('CONSUMER, OWNER, PATIENT, DOCTOR; ADMIN and AUDITOR only when an admin signs someone up'),
  })
  .strict()
  .meta({ id: 'SignupRequest' });

const loginBody = z.object({ email: z.string().min(1).max(254), password: password.min(1) }).strict().meta({ id: 'LoginRequest' });

const refreshBody = z.object({ refreshToken: z.string().min(1).max(200) }).strict().meta({ id: 'RefreshRequest' });

const tokenResponse = z
  .object({
    accessToken: z.string(),
    refreshToken: z.string().describe('Opaque; single use: each refresh returns a new one'),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int().describe('Seconds until the access token expires'),
  })
  .meta({ id: 'TokenResponse' });

/** The refresh token of a stored token response; `undefined` for anything else. */
function storedRefreshToken(body: Buffer): string | undefined {
  try {
    const stored = tokenResponse.safeParse(JSON.parse(body.toString('utf8')));
    return stored.success ? stored.data.refreshToken : undefined;
  } catch {
    return undefined;
  }
}

function tokens(app: FastifyInstance, session: Pick<Session, 'actor' | 'refreshToken'>): z.infer<typeof tokenResponse> {
  const { accessToken, expiresIn } = app.issueAccessToken(session.actor);
  return { accessToken, refreshToken: session.refreshToken, tokenType: 'Bearer', expiresIn };
}

/** Signup, login, token refresh and logout under `/v1/auth`; the stricter rate limit applies by prefix. */
export const authRoutes: FastifyPluginAsyncZod<{ readonly identity: IdentityService }> = async (app, { identity }) => {
  const tags = ['auth'];
  // A refresh retried under its key shortly after gets the refresh token it was issued while that
  // token is still live (see `CredentialsIdempotency`), with an access token signed now: the
  // user's roles may have changed since.
  const refreshIdempotency: CredentialsIdempotency = {
    replayable: async (stored) => {
      const refreshToken = storedRefreshToken(stored);
      const actor = refreshToken === undefined ? undefined : await identity.liveSessionActor(refreshToken);
      if (refreshToken === undefined || actor === undefined) return undefined;
      return Buffer.from(JSON.stringify(tokens(app, { actor, refreshToken })));
    },
  };

  // The password is left out of the request hash (see `idempotencyUnhashed`): a retry under the
  // key with the other members the same replays the signup even with another password, and the
  // account keeps the first one (the user id, from the command id, is the same, and a retry that
  // runs again after the key expired renews the first credentials, never replaces them).
  app.post(
    '/signup',
    {
      onRequest: optionalAuth,
      config: { idempotencyUnhashed: ['password'] },
      schema: { tags, summary: 'Create a user', headers: noIfMatchHeaderSchema, body: signupBody, response: { 201: commandResultSchema } },
    },
    async (request, reply) => {
      const result = await identity.signUp(request.body, commandContext(request), request.commandId);
      // The stored answer is about the user created, not the caller (anonymous, or an admin).
      request.idempotencySubject = result.id;
      return sendCommandResult(reply, result, 201);
    },
  );

  // A retried login opens another session: its answer is never stored, lest the key's row keep
  // a hash of the password for its time to live (see `'no-replay'`).
  app.post(
    '/login',
    { config: { idempotency: 'no-replay' }, schema: { tags, summary: 'Get an access and a refresh token', body: loginBody, response: { 200: tokenResponse } } },
    async (request) => {
      const session = await identity.logIn(request.body, commandContext(request));
      return tokens(app, session);
    },
  );

  app.post(
    '/refresh',
    { config: { idempotency: refreshIdempotency }, schema: { tags, summary: 'Trade a refresh token for a new pair', body: refreshBody, response: { 200: tokenResponse } } },
    async (request) => {
      const session = await identity.refresh(request.body.refreshToken, commandContext(request));
      request.idempotencySubject = session.actor.id;
      return tokens(app, session);
    },
  );

  app.post(
    '/logout',
    { onRequest: requireAuth, schema: { tags, summary: 'Revoke a refresh token and its family', security: [{ bearerAuth: [] }], body: refreshBody, response: { 204: z.undefined() } } },
    async (request, reply) => {
      await identity.logOut(request.body.refreshToken, commandContext(request));
      return reply.code(204).send();
    },
  );
};
