/** node's codes for a server that cannot be reached: refused, no such host, no answer. */
const unreachableCodes: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * SQLSTATEs of a server that will not let the login in: no such database (3D000), a wrong
 * password (28P01), any other refusal of the login (28000: no such role, `pg_hba.conf`).
 */
const refusedLoginCodes: ReadonlySet<string> = new Set(['3D000', '28P01', '28000']);

/**
 * One line for a PostgreSQL that cannot be reached or refuses the login, naming the server and
 * database (from `databaseUrl`, else what the error names), never the password; `undefined` for
 * any other error. The error may be wrapped (`cause`).
 */
export function connectionFailure(error: unknown, databaseUrl: string | undefined): string | undefined {
  // A few links of `cause` at most: enough for a wrapped driver error, and no loop on a cycle.
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    const code = 'code' in current && typeof current.code === 'string' ? current.code : undefined;
    // node's AggregateError (every address of a host refused) has the code and no message.
    if (code !== undefined && (unreachableCodes.has(code) || refusedLoginCodes.has(code))) return `cannot connect to PostgreSQL ${server(current, databaseUrl)}: ${current.message || code}`;
    current = current.cause;
  }
  return undefined;
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
  const database = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username) || '(the login\'s own)';
  return { host, port: url.port || '5432', database };
}
