import type { z } from 'zod';

/**
 * Marks a field of an event schema as personal data (a name, an email, a reason for visit,
 * clinical notes, free text a person wrote). The marker lives on the schema so that encryption
 * for crypto-shredding finds every such field from the schemas alone, not from scattered code.
 */
export function personal<Schema extends z.ZodType>(schema: Schema): Schema {
  return schema.meta({ personalData: true });
}

export function isPersonal(schema: z.ZodType): boolean {
  return schema.meta()?.personalData === true;
}
