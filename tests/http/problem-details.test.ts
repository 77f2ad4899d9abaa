import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { VersionMismatchError } from '../../src/application/command-handling/errors.js';
import { StreamDeletedError } from '../../src/application/ports/event-store.js';
import { DomainError, NotFoundError } from '../../src/domain/shared/domain-error.js';
import { expectedVersion } from '../../src/infrastructure/http/command-result.js';
import { problemSchema } from '../../src/infrastructure/http/problem.js';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';

let backend: TestBackend;
let api: TestApi;

beforeAll(async () => {
  backend = await startBackend();
  api = await startApi(backend, {
    routes: (app) => {
      app.post('/test/echo', { schema: { body: z.object({ email: z.email(), age: z.number().int() }) } }, async (request) => request.body);
      app.post('/test/bodiless', async () => ({ done: true }));
      app.post('/test/boom', async () => {
        throw new Error('connection to 10.0.0.7 refused: SELECT secret FROM vault');
      });
      app.post('/test/rule', async () => {
        throw new DomainError('dates-unavailable', 'The dates are taken');
      });
      app.post('/test/missing', async () => {
        throw new NotFoundError('Listing');
      });
      app.post('/test/forbidden', async () => {
        throw new DomainError('forbidden', 'Not your listing');
      });
      app.post('/test/deleted', async () => {
        throw new StreamDeletedError('listing-1');
      });
      app.post('/test/stale', async (request) => {
        throw new VersionMismatchError('listing-1', expectedVersion(request) ?? -1, 4);
      });
    },
  });
}, 60_000);

afterAll(async () => {
  await api.close();
  await backend.close();
});

async function expectProblem(response: Response, status: number, code: string) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = problemSchema.parse(await response.json());
  expect(problem).toMatchObject({ status, type: `https://bookable.example/problems/${code}` });
  expect(problem.requestId).toBe(response.headers.get('x-request-id'));
  return problem;
}

const post = (path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(`${api.url}${path}`, { method: 'POST', headers, body });

describe('problem+json', () => {
  it('names each invalid field on a validation failure', async () => {
    const problem = await expectProblem(await post('/test/echo', JSON.stringify({ email: 'nope', age: 1.5 })), 400, 'validation-failed');
    expect(problem.errors?.map((error) => error.path).sort()).toEqual(['body.age', 'body.email']);
    expect(problem.instance).toBe('/test/echo');
  });

  it('answers an unknown route with 404', async () => {
    const problem = await expectProblem(await fetch(`${api.url}/v1/nothing-here?x=1`), 404, 'not-found');
    expect(problem.detail).toContain('GET /v1/nothing-here');
  });

  it('answers a path it cannot decode with 400 problem+json', async () => {
    const problem = await expectProblem(await fetch(`${api.url}/v1/bookings/%zz/cancel`, { method: 'POST' }), 400, 'bad-request');
    expect(problem.instance).toBe('/v1/bookings/%zz/cancel');
  });

  it('answers a body over 64 KiB with 413', async () => {
    const big = JSON.stringify({ email: 'a@example.com', age: 1, padding: 'x'.repeat(70 * 1024) });
    await expectProblem(await post('/test/echo', big), 413, 'payload-too-large');
  });

  it('answers malformed JSON with 400', async () => {
    await expectProblem(await post('/test/echo', '{"email": '), 400, 'malformed-body');
  });

  it('answers JSON declared in another charset than UTF-8 with 415, and takes UTF-8 declared or not', async () => {
    const latin1 = Buffer.from('{"email":"caf\u00e9@example.com","age":1}', 'latin1');
    const refused = await fetch(`${api.url}/test/echo`, { method: 'POST', headers: { 'content-type': 'application/json; charset=iso-8859-1' }, body: latin1 });
    await expectProblem(refused, 415, 'unsupported-media-type');
    for (const type of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json']) {
      expect((await post('/test/echo', JSON.stringify({ email: 'a@example.com', age: 1 }), { 'content-type': type })).status, type).toBe(200);
    }
  });

  it('takes an empty JSON body as no body: accepted where none is needed, named as missing where one is', async () => {
    expect((await post('/test/bodiless', '')).status).toBe(200);
    const problem = await expectProblem(await post('/test/echo', ''), 400, 'validation-failed');
    expect(problem.errors?.map((error) => error.path)).toEqual(['body']);
  });

  it('answers a body that is not JSON with 415', async () => {
    await expectProblem(await post('/test/echo', 'hello', { 'content-type': 'text/plain' }), 415, 'unsupported-media-type');
  });

  it('hides the details of an unexpected error but logs them under the request id', async () => {
    const response = await post('/test/boom', '{}', { 'content-type': 'application/json', 'x-request-id': 'boom-1' });
    const problem = await expectProblem(response, 500, 'internal-error');
    const text = JSON.stringify(problem);
    expect(text).not.toMatch(/10\.0\.0\.7|SELECT|vault|at .*\.ts/);
    expect(problem.detail).toContain('boom-1');
    const logged = api.logs.find((line) => line.requestId === 'boom-1' && line.level === 50);
    expect(JSON.stringify(logged)).toContain('SELECT secret FROM vault');
  });

  it('maps domain errors: a rule to 409 named after it, not-found to 404, forbidden to 403', async () => {
    const rule = await expectProblem(await post('/test/rule', '{}'), 409, 'dates-unavailable');
    expect(rule.detail).toBe('The dates are taken');
    await expectProblem(await post('/test/missing', '{}'), 404, 'not-found');
    await expectProblem(await post('/test/forbidden', '{}'), 403, 'forbidden');
  });

  it('refuses a command on a stream deleted for good (an EventStoreDB tombstone) with 409 stream-deleted', async () => {
    const deleted = await expectProblem(await post('/test/deleted', '{}'), 409, 'stream-deleted');
    expect(deleted.detail).toBe('Stream listing-1 was deleted for good');
  });

  it('answers a version mismatch under If-Match with 412, and a malformed If-Match with 400', async () => {
    const stale = await expectProblem(await post('/test/stale', '{}', { 'content-type': 'application/json', 'if-match': '"3"' }), 412, 'version-mismatch');
    expect(stale).toMatchObject({ expectedVersion: 3, actualVersion: 4 });
    const bad = await expectProblem(await post('/test/stale', '{}', { 'content-type': 'application/json', 'if-match': '3' }), 400, 'validation-failed');
    expect(bad.errors?.[0]?.path).toBe('headers.if-match');
  });
});

describe('request ids', () => {
  it('echoes a given X-Request-Id and logs every line of the request with it', async () => {
    const response = await fetch(`${api.url}/health/live`, { headers: { 'x-request-id': 'req-abc.123' } });
    expect(response.headers.get('x-request-id')).toBe('req-abc.123');
    const lines = api.logs.filter((line) => line.requestId === 'req-abc.123');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(api.logs.filter((line) => line.req !== undefined || line.res !== undefined).every((line) => typeof line.requestId === 'string')).toBe(true);
  });

  it('takes the trace id of a W3C traceparent, and generates one otherwise', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const traced = await fetch(`${api.url}/health/live`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    expect(traced.headers.get('x-request-id')).toBe(traceId);
    const plain = await fetch(`${api.url}/health/live`, { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(plain.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('operations', () => {
  it('reports liveness and readiness', async () => {
    expect((await fetch(`${api.url}/health/live`)).status).toBe(200);
    const ready = await fetch(`${api.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok' } });
  });

  it('answers 503 naming the dependency that does not answer', async () => {
    const failing = await startApi(backend, {
      probes: [
        { name: 'database', check: async () => undefined },
        { name: 'eventstore', check: () => Promise.reject(new Error('connect ECONNREFUSED 10.1.2.3:2113')) },
      ],
    });
    try {
      const ready = await fetch(`${failing.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'unavailable', checks: { database: 'ok', eventstore: 'unreachable' } });
    } finally {
      await failing.close();
    }
  });

  it('exposes Prometheus metrics with request durations by route', async () => {
    await fetch(`${api.url}/health/live`);
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toContain('process_cpu_user_seconds_total');
    expect(metrics).toMatch(/http_request_duration_seconds_count\{method="GET",route="\/health\/live",status_code="200"\} \d+/);
  });

  it('publishes OpenAPI 3.1 from the zod schemas', async () => {
    const document = (await (await fetch(`${api.url}/docs/json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(document.openapi).toBe('3.1.0');
    expect(document.paths).toHaveProperty('/v1/auth/signup');
    expect(JSON.stringify(document.paths['/v1/auth/signup'])).toContain('idempotency-key');
    expect((await fetch(`${api.url}/docs`, { redirect: 'manual' })).status).toBeLessThan(400);
  });

  it("documents every operation's problem answers, and a command result's ETag and Event-Position", async () => {
    type Response = { content?: Record<string, { schema?: { $ref?: string } }>; headers?: Record<string, unknown> };
    type Document = { paths: Record<string, Record<string, { responses: Record<string, Response> }>>; components: { schemas: Record<string, unknown> } };
    const document = (await (await fetch(`${api.url}/docs/json`)).json()) as Document;
    expect(document.components.schemas).toHaveProperty('Problem');
    const operations = Object.entries(document.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ at: `${method} ${path}`, operation })));
    expect(operations.length).toBeGreaterThan(10);
    for (const { at, operation } of operations) {
      for (const range of ['4XX', '5XX']) {
        expect(operation.responses[range]?.content?.['application/problem+json']?.schema?.$ref, `${at} ${range}`).toBe('#/components/schemas/Problem');
      }
    }
    const created = document.paths['/v1/listings']?.post?.responses['201'];
    expect(Object.keys(created?.headers ?? {})).toEqual(expect.arrayContaining(['ETag', 'Event-Position']));
    expect(JSON.stringify(document.paths['/v1/admin/subjects/{userId}/erase'])).toContain('if-match');
  });

  it("documents Event-Position, optional, on a command route's refused and failed answers, and on no other route's", async () => {
    type Response = { headers?: Record<string, { description?: string; required?: boolean; schema?: unknown }> };
    type Document = { paths: Record<string, Record<string, { responses: Record<string, Response> }>> };
    const document = (await (await fetch(`${api.url}/docs/json`)).json()) as Document;
    for (const range of ['4XX', '5XX']) {
      for (const [path, method] of [['/v1/bookings', 'post'], ['/v1/listings/{id}/deactivate', 'post']] as const) {
        const header = document.paths[path]?.[method]?.responses[range]?.headers?.['Event-Position'];
        expect(header, `${method} ${path} ${range}`).toMatchObject({ required: false, schema: { type: 'string' } });
        expect(header?.description, `${method} ${path} ${range}`).toMatch(/undo.*Consistency-Position/s);
      }
      // Answers that are no command result: a refusal there appends nothing.
      const other = document.paths['/test/rule']?.post?.responses[range];
      expect(other, range).toBeDefined();
      expect(other?.headers ?? {}, range).not.toHaveProperty('Event-Position');
    }
  });

  it('sends security headers and honours the CORS allow-list', async () => {
    const allowed = await fetch(`${api.url}/health/live`, { headers: { origin: 'https://app.example' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(allowed.headers.get('x-content-type-options')).toBe('nosniff');
    const other = await fetch(`${api.url}/health/live`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it("sends helmet's headers on every answer, errors included, and leaves the docs UI its own policy", async () => {
    for (const response of [await fetch(`${api.url}/health/live`), await fetch(`${api.url}/nowhere`), await postJson(api.url, '/test/echo', {})]) {
      expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(response.headers.get('strict-transport-security')).toMatch(/^max-age=\d+; includeSubDomains$/);
      expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(response.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(response.headers.get('x-powered-by')).toBeNull();
    }
    const ui = await fetch(`${api.url}/docs/static/index.html`);
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-security-policy')).toContain("img-src 'self' data: validator.swagger.io");
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After past the stricter limit, one budget for all of /v1/auth/*', async () => {
    const limited = await startApi(backend, { authRateLimitMax: 2 });
    try {
      const login = () => postJson(`${limited.url}/v1/auth/login`, { email: 'nobody@example.com', password: 'x' });
      expect((await login()).status).toBe(401);
      expect((await postJson(`${limited.url}/v1/auth/refresh`, { refreshToken: 'x'.repeat(43) })).status).toBe(401);
      for (const refused of [await login(), await postJson(`${limited.url}/v1/auth/signup`, {})]) {
        expect(refused.status).toBe(429);
        expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(refused.body).toMatchObject({ type: 'https://bookable.example/problems/rate-limited' });
      }
      expect((await fetch(`${limited.url}/health/live`)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
