import { createHmac } from 'node:crypto';

// The services a bench starts get this key, issuer and audience, so that the bench can mint
// real access tokens for any user and role without signing anybody up.

const secret = 'bench-secret-bench-secret-bench-secret-0123';
const issuer = 'bookable';
const audience = 'bookable-api';

/** The settings that make a service accept `token()`'s tokens. */
export const benchAuthEnv = { JWT_SECRET: secret, JWT_ISSUER: issuer, JWT_AUDIENCE: audience };

/** An HS256 access token for `sub` with `roles`, valid for an hour. */
export function token(sub: string, roles: readonly string[]): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ sub, roles, iss: issuer, aud: audience, iat: now, exp: now + 3600 })}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
