import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { configurationTable } from '../../src/infrastructure/config/config-table.js';
import { loadConfig, ConfigError } from '../../src/infrastructure/config/config.js';

describe('configuration', () => {
  it('is documented in the README exactly as the schema defines it (npm run config:table)', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(configurationTable());
  });

  it('stops start-up with a message that names a bad setting', () => {
    expect(() => loadConfig({ COMMAND_PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => loadConfig({ COMMAND_PORT: 'eighty' })).toThrow(/COMMAND_PORT/);
  });

  it('needs nothing set for the embedded default', () => {
    expect(loadConfig({})).toMatchObject({ COMMAND_PORT: 3001, QUERY_PORT: 3002, ROLE: 'all' });
  });
});
