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
    transformObject: jsonSchemaTransformObject,
  });
  // staticCSP: the UI sets its own Content-Security-Policy, which helmet's strict default would break.
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
};

export const openApiPlugin = fp(openApi, { name: 'openapi' });
