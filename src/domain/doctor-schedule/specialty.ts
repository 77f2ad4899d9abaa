import { z } from 'zod';
import { DomainError } from '../shared/domain-error.js';
import { notPrintable, printable } from '../shared/printable-text.js';

export const maxSpecialtyLength = 100;

/**
 * What a doctor practises, free text as they publish it ("Cardiology", "General practice"):
 * without control characters, as the query API's specialty filter is, so it can be searched for.
 */
export const specialtySchema = z.string().trim().min(1).max(maxSpecialtyLength).regex(printable, notPrintable);

/**
 * The specialty as stored: trimmed, blank meaning none. The decider applies it as well as the
 * request schema, because a command need not have come through HTTP.
 */
export function normaliseSpecialty(specialty: string | null): string | null {
  const trimmed = specialty?.trim() ?? '';
  if (trimmed.length > maxSpecialtyLength) {
    throw new DomainError('invalid-specialty', `a specialty has at most ${maxSpecialtyLength} characters`);
  }
  return trimmed === '' ? null : trimmed;
}
