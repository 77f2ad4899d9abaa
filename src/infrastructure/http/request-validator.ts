import type { FastifySchemaCompiler } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { validatorCompiler as zodValidatorCompiler } from 'fastify-type-provider-zod';
import type { z } from 'zod';

/** A NUL, or half of a surrogate pair with no other half. */
const unstorable = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Where in `value` the first string sits that PostgreSQL's text and jsonb cannot hold. */
function unstorableAt(value: unknown, path: readonly string[] = []): readonly string[] | undefined {
  if (typeof value === 'string') return unstorable.test(value) ? path : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const found = unstorableAt(inner, [...path, key]);
    if (found) return found;
  }
  return undefined;
}

/**
 * Zod validates every request, and then no string may hold a NUL or an unpaired surrogate: no
 * text a person means has them, PostgreSQL refuses them (an append would fail with a 500), and a
 * sealed personal field that kept one would stop the first read model to store it. Refused for
 * every field of every route at once, as a validation failure naming the field.
 */
export const requestValidatorCompiler: FastifySchemaCompiler<z.ZodType> = (route) => {
  const validate = zodValidatorCompiler(route);
  return (data) => {
    const result = validate(data);
    if (typeof result !== 'object' || result === null || !('value' in result)) return result;
    const path = unstorableAt(result.value);
    if (!path) return result;
    const error: FastifySchemaValidationError = {
      keyword: 'unstorable_text',
      instancePath: `/${path.join('/')}`,
      schemaPath: '#',
      params: {},
      message: 'must not contain a NUL character or an unpaired surrogate',
    };
    return { error: [error] };
  };
};
