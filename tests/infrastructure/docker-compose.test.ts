import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

/**
 * `docker stop` signals PID 1 only. The roles drain and exit 0 on SIGTERM (shutdown tests), but
 * only if the signal reaches node: a shell as PID 1 ignores it, and `npm start` orphans node.
 */
describe('docker-compose.yml', () => {
  it('runs each role as node itself, under an init that passes SIGTERM on', async () => {
    const compose = await readFile(new URL('../../docker-compose.yml', import.meta.url), 'utf8');
    const roleCommands = [...compose.matchAll(/^\s+command: (.*--role .*)$/gm)].map((match) => match[1]);

    expect(roleCommands).toHaveLength(5);
    for (const command of roleCommands) {
      expect(command).toMatch(/&& exec node [^&;|]*dist\/infrastructure\/main\.js --role (command|query|projector)"\]$/);
    }
    expect(compose).toMatch(/^x-app: &app\n(?:(?: {2}.*)?\n)*? {2}init: true$/m);
  });
});
