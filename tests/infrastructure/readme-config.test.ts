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

  it.each(['SHUTDOWN_GRACE_MS', 'SHED_HEAP_USED_MB', 'COMMAND_PORT', 'READY_MAX_PROJECTION_LAG_MS', 'DATABASE_POOL_SIZE'])(
    'refuses %s set empty, or not as digits, rather than read it as a number',
    (name) => {
      for (const value of ['', ' ', '0x10', '1e3', '-1']) expect(() => loadConfig({ [name]: value }), JSON.stringify(value)).toThrow(new RegExp(name));
      expect(loadConfig({ [name]: '20' })).toMatchObject({ [name]: 20 });
    },
  );

  it('needs nothing set for the embedded default', () => {
    expect(loadConfig({})).toMatchObject({ COMMAND_PORT: 3001, QUERY_PORT: 3002, ROLE: 'all' });
  });
});
