import { capturedLogs } from '../support/captured-logs.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../src/infrastructure/http/http-server.js';
import { requireAuth } from '../../src/infrastructure/http/plugins/auth.plugin.js';

/**
 * Every answered request is in `http_request_duration_seconds`, those refused before any route
 * or handler ran included, each under a route label drawn from a fixed set: a series per raw URL
 * would grow without bound.
 */
describe('request metrics', () => {
  let app: HttpServer;
  let url: string;
  let logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const captured = capturedLogs();
    logs = captured.lines;
    app = await createHttpServer({
      logger: captured.logger,
      openApi: { title: 't', description: 't', version: '1' },
      security: { corsOrigins: [], rateLimitMax: 10_000, strict: { prefixes: ['/v1/strict/'], max: 1 } },
      auth: { secret: 'x'.repeat(40), issuer: 'i', audience: 'a', accessTokenTtlSeconds: 60 },
      probes: [],
    });
    app.post('/v1/things', { onRequest: requireAuth }, async () => ({ ok: true }));
    app.get('/v1/things/:id', async () => ({ ok: true }));
    app.post('/v1/echo', async (request) => request.body);
    app.get('/v1/strict/ping', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    url = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : '';
  });
  afterAll(() => app.close());

  /** The count of one series of the histogram, 0 when there is none. */
  async function countOf(method: string, route: string, status: number): Promise<number> {
    const text = await (await fetch(`${url}/metrics`)).text();
    const series = `http_request_duration_seconds_count{method="${method}",route="${route}",status_code="${status}"} `;
    const line = text.split('\n').find((candidate) => candidate.startsWith(series));
    return line === undefined ? 0 : Number(line.slice(series.length));
  }

  async function routeLabels(): Promise<string[]> {
    const text = await (await fetch(`${url}/metrics`)).text();
    return [...new Set([...text.matchAll(/^http_request_duration_seconds_count\{[^}]*route="([^"]*)"/gm)].map((match) => match[1] ?? ''))];
  }

  it('counts a path fastify cannot decode, answered before routing', async () => {
    const response = await fetch(`${url}/v1/x/%zz`, { headers: { 'x-request-id': 'bad-url-1' } });
    expect(response.status).toBe(400);
    expect(await countOf('GET', 'unmatched', 400)).toBe(1);
  });

  it('counts a path parameter too long to route', async () => {
    const response = await fetch(`${url}/v1/things/${'a'.repeat(200)}`);
    expect(response.status).toBe(414);
    expect(await countOf('GET', 'unmatched', 414)).toBe(1);
  });

  it('counts unknown routes under one label, however many URLs', async () => {
    expect((await fetch(`${url}/v1/nothing-here/123`)).status).toBe(404);
    expect((await fetch(`${url}/v1/somewhere-else?x=1`, { headers: { 'x-request-id': 'unknown-1' } })).status).toBe(404);
    expect(await countOf('GET', 'unmatched', 404)).toBe(2);
  });

  it('counts a body over the limit under its route', async () => {
    const response = await fetch(`${url}/v1/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ padding: 'x'.repeat(70 * 1024) }) });
    expect(response.status).toBe(413);
    expect(await countOf('POST', '/v1/echo', 413)).toBe(1);
  });

  it('counts a request without an access token under its route', async () => {
    const response = await fetch(`${url}/v1/things`, { method: 'POST' });
    expect(response.status).toBe(401);
    expect(await countOf('POST', '/v1/things', 401)).toBe(1);
  });

  it('counts a rate-limited request under its route', async () => {
    expect((await fetch(`${url}/v1/strict/ping`)).status).toBe(200);
    expect((await fetch(`${url}/v1/strict/ping`)).status).toBe(429);
    expect(await countOf('GET', '/v1/strict/ping', 429)).toBe(1);
  });

  it('never labels a series with a raw URL', async () => {
    const labels = await routeLabels();
    expect(labels.filter((label) => label !== 'unmatched' && !app.hasRoute({ method: 'GET', url: label }) && !app.hasRoute({ method: 'POST', url: label }))).toEqual([]);
  });

  it('logs a request answered before routing with its id, status and duration, as any other', async () => {
    const completed = (id: string) => logs.find((line) => line.requestId === id && line.msg === 'request completed');
    expect(completed('unknown-1')).toMatchObject({ res: { statusCode: 404 }, responseTime: expect.any(Number) });
    expect(completed('bad-url-1')).toMatchObject({ res: { statusCode: 400 }, responseTime: expect.any(Number) });
  });
});
