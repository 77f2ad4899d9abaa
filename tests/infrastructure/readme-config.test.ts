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

  it('refuses a DATABASE_URL that is not a PostgreSQL connection string, rather than fail in the migrations', () => {
    for (const value of ['http://db:5432/bookable', 'mysql://root@db/bookable', 'db:5432']) {
      expect(() => loadConfig({ DATABASE_URL: value }), value).toThrow(/DATABASE_URL: .*postgres/);
    }
    for (const value of ['postgres://app:secret@db:5432/bookable', 'postgresql://app@db/bookable?sslmode=require']) {
      expect(loadConfig({ DATABASE_URL: value }).DATABASE_URL).toBe(value);
    }
  });

  it('refuses a HOST with a port or a scheme in it, rather than fail to resolve it at listen', () => {
    for (const value of ['localhost:3000', '127.0.0.1:3001', 'http://localhost', '[::1]', 'api host']) {
      expect(() => loadConfig({ HOST: value }), value).toThrow(/HOST: /);
    }
    for (const value of ['0.0.0.0', '::', '::1', 'localhost', 'query.internal', 'bookable_query_1']) {
      expect(loadConfig({ HOST: value }).HOST).toBe(value);
    }
  });

  describe('ports one process listens on', () => {
    it('refuses the same port for the command and query APIs of the all role', () => {
      expect(() => loadConfig({ COMMAND_PORT: '3000', QUERY_PORT: '3000' })).toThrow(/QUERY_PORT: .*3000.*COMMAND_PORT/);
    });

    it('refuses an API port the embedded PostgreSQL of the same process takes', () => {
      expect(() => loadConfig({ ROLE: 'query', EMBEDDED_POSTGRES_PORT: '3002' })).toThrow(/EMBEDDED_POSTGRES_PORT: .*3002.*QUERY_PORT/);
      expect(loadConfig({ ROLE: 'query', EMBEDDED_POSTGRES_PORT: '3002', DATABASE_URL: 'postgres://db/bookable' })).toMatchObject({ QUERY_PORT: 3002 });
    });

    it('accepts the same port for roles run as separate processes, or for ports left to the system (0)', () => {
      expect(loadConfig({ ROLE: 'command', COMMAND_PORT: '3000', QUERY_PORT: '3000' })).toMatchObject({ COMMAND_PORT: 3000 });
      expect(loadConfig({ ROLE: 'all', PROJECTOR_PORT: '3001' })).toMatchObject({ PROJECTOR_PORT: 3001 });
      expect(loadConfig({ COMMAND_PORT: '0', QUERY_PORT: '0' })).toMatchObject({ COMMAND_PORT: 0, QUERY_PORT: 0 });
    });

    it('does not check them for a process that listens on none (seed, migrate, rebuild)', () => {
      expect(loadConfig({ COMMAND_PORT: '3000', QUERY_PORT: '3000' }, { listens: false })).toMatchObject({ COMMAND_PORT: 3000, QUERY_PORT: 3000 });
    });
  });

  it('needs nothing set for the embedded default', () => {
    expect(loadConfig({})).toMatchObject({ COMMAND_PORT: 3001, QUERY_PORT: 3002, ROLE: 'all' });
  });
});
