import { z } from 'zod';

/**
 * Marks a field of an event schema as personal data (a name, an email, a reason for visit,
 * clinical notes, free text a person wrote). The marker lives on the schema so that encryption
 * for crypto-shredding finds every such field from the schemas alone, not from scattered code.
 * Only text can be marked: once its subject is erased, a field reads `erasedPlaceholder`.
 */
export function personal<Schema extends z.ZodType<string>>(schema: Schema): Schema {
  return schema.meta({ personalData: true });
}

export function isPersonal(schema: z.ZodType): boolean {
  return schema.meta()?.personalData === true;
}

/** What a personal field reads once its subject's data key is destroyed. */
export const erasedPlaceholder = '[erased]';

/** Where personal fields sit in an event's data: each path a list of property names. */
export type PersonalFieldPath = readonly string[];

/** A `z.discriminatedUnion('type', …)` of `{ type, data }` objects, as far as this module looks. */
export type EventUnionSchema = {
  readonly options: readonly { readonly shape: { readonly type: { readonly value: string }; readonly data: z.ZodType } }[];
};

/**
 * The personal fields of each event type of a `z.discriminatedUnion('type', …)` of
 * `{ type, data }` objects. Personal fields may sit in nested objects (optional or nullable);
 * a marker inside an array, record or union is refused, because no path could name it.
 */
export function personalFieldPaths(eventSchema: EventUnionSchema): ReadonlyMap<string, readonly PersonalFieldPath[]> {
  const paths = new Map<string, PersonalFieldPath[]>();
  for (const option of eventSchema.options) {
    const type = option.shape.type.value;
    const found: PersonalFieldPath[] = [];
    collect(option.shape.data, [], found, type);
    if (found.length > 0) paths.set(type, found);
  }
  return paths;
}

function collect(schema: z.ZodType, path: readonly string[], found: PersonalFieldPath[], type: string): void {
  if (isPersonal(schema)) {
    found.push(path);
    return;
  }
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) {
    collect(schema.unwrap() as z.ZodType, path, found, type);
    return;
  }
  if (schema instanceof z.ZodObject) {
    for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) collect(field, [...path, key], found, type);
    return;
  }
  if (containsPersonal(schema)) {
    throw new TypeError(`${type}: personal data at ${path.join('.') || 'data'} sits where no field path can name it`);
  }
}

/** Whether a marker hides anywhere inside, e.g. in an array's elements. */
function containsPersonal(schema: z.ZodType): boolean {
  if (isPersonal(schema)) return true;
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) return containsPersonal(schema.unwrap() as z.ZodType);
  if (schema instanceof z.ZodArray) return containsPersonal(schema.element as z.ZodType);
  if (schema instanceof z.ZodObject) return Object.values(schema.shape as Record<string, z.ZodType>).some(containsPersonal);
  if (schema instanceof z.ZodUnion) return (schema.options as readonly z.ZodType[]).some(containsPersonal);
  if (schema instanceof z.ZodRecord) return containsPersonal(schema.valueType as z.ZodType);
  return false;
}
