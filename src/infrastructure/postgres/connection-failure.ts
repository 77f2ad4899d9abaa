/** node's codes for a server that cannot be reached: refused, no such host, no answer. */
const unreachableCodes: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * SQLSTATEs of a server that will not let the login in: no such database (3D000), a wrong
 * password (28P01), any other refusal of the login (28000: no such role, `pg_hba.conf`).
 */
const refusedLoginCodes: ReadonlySet<string> = new Set(['3D000', '28P01', '28000']);

/**
 * node's codes for a server certificate TLS will not trust (`sslmode` other than `disable`): the
 * verification errors of OpenSSL that name the certificate, and a host name it does not cover.
 */
const refusedCertificateCodes: ReadonlySet<string> = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * What pg says, without a code, of a server that is not one it can talk to: no SSL where the URL
 * asks for it, or an answer to its SSL request that is no PostgreSQL's. Matched whole: an error
 * that merely quotes one is someone else's.
 */
const refusedSslMessages: ReadonlySet<string> = new Set(['The server does not support SSL connections', 'There was an error establishing an SSL connection']);

/**
 * A connection that broke: pg's codeless message for a server that hung up (a port where
 * something else listens, or a server that went away), and node's for a reset or a write after it
 * closed. The error does not say whether it came while connecting or in the middle of a long
 * command; either way the database failed the command, not the code, so both get the one line,
 * worded to hold for both.
 */
const brokenConnectionCodes: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);
const brokenConnectionMessage = 'Connection terminated unexpectedly';

/**
 * One line for a PostgreSQL that cannot be reached, refuses the login, cannot be talked to over
 * TLS as the URL asks, or broke the connection, naming the server and database (from
 * `databaseUrl`, else what the error names), never the password; `undefined` for any other
 * error. The error may be wrapped (`cause`).
 */
export function connectionFailure(error: unknown, databaseUrl: string | undefined): string | undefined {
  // A few links of `cause` at most: enough for a wrapped driver error, and no loop on a cycle.
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    const code = errorCode(current);
    // node's AggregateError (every address of a host refused) has the code and no message.
    const said = current.message || code;
    const kind = failureKind(code, current.message);
    if (kind === 'refused') return `cannot connect to PostgreSQL ${server(current, databaseUrl)}: ${said}`;
    if (kind === 'broke') return `connection to PostgreSQL ${server(current, databaseUrl)} broke: ${said}`;
    current = current.cause;
  }
  return undefined;
}

function errorCode(error: Error): string | undefined {
  return 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function failureKind(code: string | undefined, message: string): 'refused' | 'broke' | undefined {
  if (code === undefined) {
    if (refusedSslMessages.has(message)) return 'refused';
    return message === brokenConnectionMessage ? 'broke' : undefined;
  }
  if (unreachableCodes.has(code) || refusedLoginCodes.has(code) || refusedCertificateCodes.has(code)) return 'refused';
  return brokenConnectionCodes.has(code) ? 'broke' : undefined;
}

function server(error: Error, databaseUrl: string | undefined): string {
  const named = databaseUrl === undefined ? undefined : urlParts(databaseUrl);
  if (named) return `at ${named.host}:${named.port}, database ${named.database}`;
  // Without DATABASE_URL the tools use the embedded PostgreSQL; the error may still say where it tried.
  const address = textField(error, 'address') ?? textField(error, 'hostname');
  const port = 'port' in error && typeof error.port === 'number' ? error.port : 5432;
  return address === undefined ? '(the embedded one)' : `at ${address}:${port}`;
}

function textField(error: Error, name: 'address' | 'hostname'): string | undefined {
  const value: unknown = name in error ? Reflect.get(error, name) : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** Host, port and database of a `postgres://` URL, with libpq's defaults; only those parts, so no password can slip out. */
function urlParts(databaseUrl: string): { host: string; port: string; database: string } | undefined {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return undefined;
  }
  const host = url.hostname || url.searchParams.get('host') || 'localhost';
  const database = decoded(url.pathname.slice(1)) || decoded(url.username) || '(the login\'s own)';
  return { host, port: url.port || '5432', database };
}

/** `text` percent-decoded, or as written where that fails (a bare `%`), as pg itself reads the URL. */
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
