import { capturedLogs } from '../support/captured-logs.js';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../src/infrastructure/http/http-server.js';
import { problemSchema } from '../../src/infrastructure/http/problem.js';
import { createOperationsServer } from '../../src/infrastructure/http/operations-server.js';
import { createLogger } from '../../src/infrastructure/logging/logger.js';
import { Registry } from 'prom-client';
import { startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';

/**
 * Requests Node's HTTP parser refuses before fastify sees them (headers over the limit, a raw
 * non-ASCII byte in the URL, a control character in a header) answer problem+json as every other
 * 4xx does (API.md), and are counted and logged. No client library sends such requests: they
 * go over a raw socket.
 */

type RawAnswer = { status: number; headers: Record<string, string>; body: string; bodyBytes: number };

/** Writes `request` as is and reads the answer until the server closes the connection. */
function exchange(port: number, request: Buffer | string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server stops reading at the error and closes with bytes of ours unread: a reset may
    // follow its answer, which is already in hand by then.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      const raw = Buffer.concat(chunks);
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) {
        reject(new Error(`no HTTP answer: ${JSON.stringify(raw.toString('latin1'))}`));
        return;
      }
      const [statusLine = '', ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const body = raw.subarray(end + 4);
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: body.toString('utf8'), bodyBytes: body.length });
    });
  });
}

/** Writes `request`, closes its side, and reads whatever comes back until the server closes. */
function sendAndHangUp(port: number, request: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.end(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

const withRawByte = (before: string, bytes: number[], after: string) => Buffer.concat([Buffer.from(before, 'latin1'), Buffer.from(bytes), Buffer.from(after, 'latin1')]);
/** `GET /v1/listings?q=Saône` with the "ô" as its two UTF-8 bytes, not percent-encoded. */
const rawNonAscii = withRawByte('GET /v1/listings?q=Sa', [0xc3, 0xb4], 'ne HTTP/1.1\r\nHost: x\r\n\r\n');

function expectProblem(answer: RawAnswer, status: number, code: string) {
  expect(answer.status).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(Number(answer.headers['content-length'])).toBe(answer.bodyBytes);
  expect(answer.headers.connection).toBe('close');
  const problem = problemSchema.parse(JSON.parse(answer.body));
  expect(problem).toMatchObject({ status, type: `https://bookable.example/problems/${code}` });
  expect(problem.requestId).toBe(answer.headers['x-request-id']);
  return problem;
}

function portOf(app: HttpServer): number {
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

describe('requests refused by the HTTP parser', () => {
  let app: HttpServer;
  let port: number;
  let logs: Record<string, unknown>[] = [];
  let slowDone = 0;

  beforeAll(async () => {
    const captured = capturedLogs();
    logs = captured.lines;
    app = await createHttpServer({
      logger: captured.logger,
      openApi: { title: 't', description: 't', version: '1' },
      security: { corsOrigins: [], rateLimitMax: 10_000 },
      auth: { secret: 'x'.repeat(40), issuer: 'i', audience: 'a', accessTokenTtlSeconds: 60 },
      probes: [],
    });
    app.get('/v1/listings', async () => ({ items: [] }));
    app.post('/v1/slow', async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      slowDone += 1;
      return { done: true };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = portOf(app);
  });
  afterAll(() => app.close());

  async function countOf(method: string, route: string, status: number): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const series = `http_request_duration_seconds_count{method="${method}",route="${route}",status_code="${status}"} `;
    const line = text.split('\n').find((candidate) => candidate.startsWith(series));
    return line === undefined ? 0 : Number(line.slice(series.length));
  }

  it('answers headers over the limit with 431 problem+json', async () => {
    const answer = await exchange(port, `GET /v1/listings HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    const problem = expectProblem(answer, 431, 'header-fields-too-large');
    expect(problem.instance).toBe('/v1/listings');
  });

  it('answers a query string over the limit with 431 problem+json, without echoing the query', async () => {
    const answer = await exchange(port, `GET /v1/listings?q=${'a'.repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(expectProblem(answer, 431, 'header-fields-too-large').instance).toBe('/v1/listings');
  });

  it('answers a raw non-ASCII byte in the URL with 400 problem+json that says what is wrong', async () => {
    const problem = expectProblem(await exchange(port, rawNonAscii), 400, 'bad-request');
    expect(problem.instance).toBe('/v1/listings');
    expect(problem.detail).toMatch(/url/i);
  });

  it('answers a control character in a header with 400 problem+json', async () => {
    expectProblem(await exchange(port, withRawByte('GET /v1/listings HTTP/1.1\r\nHost: x\r\nX-Note: a', [0x01], 'b\r\n\r\n')), 400, 'bad-request');
  });

  it('names the path of a non-ASCII path percent-encoded, not as raw bytes', async () => {
    const problem = expectProblem(await exchange(port, withRawByte('GET /v1/caf', [0xc3, 0xa9], ' HTTP/1.1\r\nHost: x\r\n\r\n')), 400, 'bad-request');
    expect(problem.instance).toBe('/v1/caf%C3%A9');
  });

  it('counts each refusal in /metrics under route "unmatched"', async () => {
    const before = { 400: await countOf('GET', 'unmatched', 400), 431: await countOf('GET', 'unmatched', 431) };
    await exchange(port, rawNonAscii);
    await exchange(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    expect(await countOf('GET', 'unmatched', 400)).toBe(before[400] + 1);
    expect(await countOf('GET', 'unmatched', 431)).toBe(before[431] + 1);
  });

  it('answers a valid request pipelined before a bad one with its own answer, then closes: no 400 in its name', async () => {
    const before = await countOf('POST', 'unmatched', 400);
    const valid = 'POST /v1/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';
    const answer = await exchange(port, Buffer.concat([Buffer.from(valid, 'latin1'), withRawByte('GET /v1/caf', [0xc3, 0xa9], ' HTTP/1.1\r\nHost: x\r\n\r\n')]));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body.slice(0, Number(answer.headers['content-length'])))).toEqual({ done: true });
    // Nothing after it: the bad request's answer would be read as the next request's.
    expect(answer.bodyBytes).toBe(Number(answer.headers['content-length']));
    expect(slowDone).toBe(1);
    expect(await countOf('POST', 'unmatched', 400)).toBe(before);
  });

  it('answers a request whose body is not valid HTTP with 400 problem+json naming its path', async () => {
    const answer = await exchange(port, 'POST /v1/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n');
    expect(expectProblem(answer, 400, 'bad-request').instance).toBe('/v1/slow');
  });

  it('answers a bad body of a request whose target is no URL path (`//`, `http://[`) with problem+json, and stays up', async () => {
    for (const target of ['//', 'http://[', 'http://a:b/']) {
      const answer = await exchange(port, `POST ${target} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`);
      // Refused by the parser (400) or, a target fastify could route, by fastify first: problem+json either way.
      expect([400, 404], target).toContain(answer.status);
      expect(answer.headers['content-type'], target).toContain('application/problem+json');
    }
    expect((await exchange(port, 'GET /v1/nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(404);
  });

  it('closes without answering or counting a request cut short by the client', async () => {
    const before = await countOf('GET', 'unmatched', 400);
    const answer = await sendAndHangUp(port, 'GET /v1/listings HTTP/1.1\r\nHost: x\r\n');
    expect(answer.toString('latin1')).toBe('');
    expect(await countOf('GET', 'unmatched', 400)).toBe(before);
  });

  it('logs each refusal with its request id and status', async () => {
    const answer = await exchange(port, rawNonAscii);
    const requestId = answer.headers['x-request-id'];
    expect(logs.find((line) => line.requestId === requestId && line.msg === 'request completed')).toMatchObject({ res: { statusCode: 400 } });
  });
});

describe('both APIs answer parser refusals with problem+json', () => {
  let backend: TestBackend;
  let command: TestApi;
  let query: QueryApiFixture;

  beforeAll(async () => {
    backend = await startBackend();
    command = await startApi(backend);
    query = await startQueryApi();
    await query.app.listen({ port: 0, host: '127.0.0.1' });
  }, 60_000);
  afterAll(async () => {
    await command?.close();
    await query?.close();
    await backend?.close();
  });

  it('the command API', async () => {
    expectProblem(await exchange(portOf(command.app), rawNonAscii), 400, 'bad-request');
  });

  it('the query API', async () => {
    expectProblem(await exchange(portOf(query.app), rawNonAscii), 400, 'bad-request');
  });

  it("the projector role's operations server (health and metrics)", async () => {
    const operations = await createOperationsServer({ logger: createLogger({ level: 'silent', pretty: false }), probes: [], metricsRegistry: new Registry() });
    try {
      await operations.listen({ port: 0, host: '127.0.0.1' });
      const address = operations.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      expectProblem(await exchange(port, rawNonAscii), 400, 'bad-request');
    } finally {
      await operations.close();
    }
  });
});
