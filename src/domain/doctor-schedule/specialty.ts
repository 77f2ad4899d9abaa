import { z } from 'zod';
import { DomainError } from '../shared/domain-error.js';

export const maxSpecialtyLength = 100;

/** What a doctor practises, free text as they publish it ("Cardiology", "General practice"). */
export const specialtySchema = z.string().trim().min(1).max(maxSpecialtyLength);

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
