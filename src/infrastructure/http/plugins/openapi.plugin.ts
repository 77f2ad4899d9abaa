import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { createJsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { requestValidatorCompiler } from '../request-validator.js';
import { responseSerializerCompiler } from '../response-serializer.js';

export type OpenApiOptions = { readonly title: string; readonly description: string; readonly version: string };

/**
 * One set of zod schemas validates requests (`requestValidatorCompiler`), shapes responses and documents both: zod checks
 * requests, responses are written from the response schemas' JSON Schema
 * (`responseSerializerCompiler`), and the same schemas become the OpenAPI 3.1 document at
 * `/docs/json`, with the UI at `/docs`. Register before any route, since routes are collected
 * as they are added.
 */
const toJsonSchema = createJsonSchemaTransform({ skipList: [] });

const openApi: FastifyPluginAsync<OpenApiOptions> = async (app, options) => {
  app.setValidatorCompiler(requestValidatorCompiler);
  app.setSerializerCompiler(responseSerializerCompiler);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: options.title, description: options.description, version: options.version },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    // The UI's own routes are marked hidden by @fastify/swagger-ui. A route at a plugin's prefix
    // answers with and without a trailing slash (fastify registers both, the document gets the
    // latter); it is named as API.md names it, without.
    transform: (route) => {
      const transformed = toJsonSchema(route);
      return transformed.url.length > 1 && transformed.url.endsWith('/') ? { ...transformed, url: transformed.url.slice(0, -1) } : transformed;
    },
    transformObject: (input) => documentProblemsAndHeaders(jsonSchemaTransformObject(input)),
  });
  // staticCSP: the UI sets its own Content-Security-Policy, which helmet's strict default would break.
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
};

export const openApiPlugin = fp(openApi, { name: 'openapi' });

type DocumentedBody = { required?: boolean; content?: Record<string, { schema?: unknown }> };

/**
 * Whether a JSON Schema takes `null`: `type: 'null'`, a type list with it, or an alternative that
 * does; a `$ref` to the document's own components is followed.
 */
function acceptsNull(schema: unknown, components: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false;
  const ref: unknown = Reflect.get(schema, '$ref');
  const prefix = '#/components/schemas/';
  if (typeof ref === 'string' && ref.startsWith(prefix) && typeof components === 'object' && components !== null) {
    return acceptsNull(Reflect.get(components, ref.slice(prefix.length)), undefined);
  }
  const type: unknown = Reflect.get(schema, 'type');
  if (type === 'null' || (Array.isArray(type) && type.includes('null'))) return true;
  const alternatives: unknown = Reflect.get(schema, 'anyOf') ?? Reflect.get(schema, 'oneOf');
  return Array.isArray(alternatives) && alternatives.some((alternative) => acceptsNull(alternative, components));
}

type DocumentedResponse = { description?: string; headers?: Record<string, unknown>; content?: Record<string, { schema?: unknown }> };

const problemResponse = (description: string): DocumentedResponse => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** What every command result's answer carries beside its body (API.md, "Commands"). */
const commandResultHeaders = {
  ETag: { description: 'The aggregate\'s version, for If-Match', schema: { type: 'string', example: '"3"' } },
  'Event-Position': { description: 'Send it as Consistency-Position to the query API to read this write', schema: { type: 'string' } },
};

/**
 * What a command's refusal may carry (`refusalHeaders` in command-result.ts), a replay of it
 * repeats, and the 5xx of a keyless booking that gave its dates back carries too: without it a
 * client reading right after would not know what to wait for to see the undoing.
 */
const refusedCommandHeaders = {
  'Event-Position': {
    description:
      'Present when the refused command had appended steps and their undoing (dates or a slot taken, then given back); a read with it as Consistency-Position sees them undone',
    required: false,
    schema: { type: 'string' },
  },
};

const returnsCommandResult = (response: DocumentedResponse) =>
  JSON.stringify(response.content?.['application/json']?.schema ?? null).includes('#/components/schemas/CommandResult');

/**
 * The zod schemas document each route's success; this adds what every route may answer besides
 * (problem+json for 4xx and 5xx, as the error handler sends for every route) and the headers of
 * a command's result and of its refusal, which no body schema can say.
 */
function documentProblemsAndHeaders<Document extends object>(document: Document): Document {
  const paths: unknown = Reflect.get(document, 'paths');
  if (typeof paths !== 'object' || paths === null) return document;
  const components: unknown = Reflect.get(document, 'components');
  const schemas: unknown = typeof components === 'object' && components !== null ? Reflect.get(components, 'schemas') : undefined;
  for (const operations of Object.values(paths)) {
    if (typeof operations !== 'object' || operations === null) continue;
    for (const operation of Object.values(operations) as Array<{ responses?: Record<string, DocumentedResponse>; requestBody?: DocumentedBody }>) {
      // @fastify/swagger marks every body required; one whose schema takes null may be left out.
      if (operation.requestBody && Object.values(operation.requestBody.content ?? {}).some((media) => acceptsNull(media.schema, schemas))) {
        operation.requestBody.required = false;
      }
      const responses = (operation.responses ??= {});
      responses['4XX'] ??= problemResponse('Refused: the problem names its type, and for a malformed request each field (errors)');
      responses['5XX'] ??= problemResponse('Failed, or unavailable for now (503 with Retry-After)');
      const answers = Object.entries(responses);
      const command = answers.some(([status, response]) => status.startsWith('2') && returnsCommandResult(response));
      for (const [status, response] of answers) {
        if (status.startsWith('2') && returnsCommandResult(response)) response.headers = { ...commandResultHeaders, ...response.headers };
        else if (command && /^[45]/.test(status)) response.headers = { ...refusedCommandHeaders, ...response.headers };
      }
    }
  }
  return document;
}
