import type { Migration } from 'kysely';

/**
 * Every schema migration, by name; kysely applies them in name order. Each module keeps its
 * migration beside its code and registers it here under a numbered name.
 */
export const migrations: Record<string, Migration> = {};
