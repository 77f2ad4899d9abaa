import { createCommandHandlers } from '../../../src/application/command-handlers.js';
import type { EventStore } from '../../../src/application/ports/event-store.js';
import { systemClock } from '../../../src/application/ports/clock.js';
import type { PaymentGateway } from '../../../src/application/ports/payment-gateway.js';
import { PaymentProcess } from '../../../src/application/process-managers/payment.process.js';
import { PgEventStore } from '../../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely, createPool } from '../../../src/infrastructure/postgres/database.js';
import { PgProcessCheckpoints, type ProcessCheckpointTables } from '../../../src/infrastructure/process-checkpoints/pg-process-checkpoints.js';
import { StripePaymentGateway } from '../../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { PersonalDataVault } from '../../../src/application/privacy/personal-data-vault.js';
import { PgSubjectKeyStore } from '../../../src/infrastructure/privacy/pg-subject-key-store.js';
import { testMasterKey } from '../../support/personal-data.js';

/**
 * The payment process manager in a process of its own, for the crash spec. It kills itself with
 * SIGKILL (no cleanup, no checkpoint save) right after its n-th append, or right after the
 * provider answered its n-th refund and before the answer is recorded: the two moments a crash
 * could do harm.
 *
 * argv: <database url> <fake Stripe port> <crash after appends, 0: never> <crash after refunds, 0: never>
 */
const [url = '', stripePort = '', afterAppends = '0', afterRefunds = '0'] = process.argv.slice(2);

const die = () => process.kill(process.pid, 'SIGKILL');

function crashingStore(store: EventStore, after: number): EventStore {
  let appends = 0;
  return {
    async appendToStream(streamId, events, options) {
      const result = await store.appendToStream(streamId, events, options);
      if (after > 0 && ++appends >= after) die();
      return result;
    },
    readStream: (streamId, options) => store.readStream(streamId, options),
    readAll: (options) => store.readAll(options),
    subscribeToAll: (options) => store.subscribeToAll(options),
    headPosition: () => store.headPosition(),
    close: () => store.close(),
  };
}

function crashingGateway(gateway: PaymentGateway, after: number): PaymentGateway {
  let refunds = 0;
  return {
    name: gateway.name,
    createIntent: (request) => gateway.createIntent(request),
    retrieveIntent: (intentId) => gateway.retrieveIntent(intentId),
    cancelIntent: (request) => gateway.cancelIntent(request),
    retrieveRefund: (request) => gateway.retrieveRefund(request),
    async createRefund(request) {
      const refund = await gateway.createRefund(request);
      if (after > 0 && ++refunds >= after) die();
      return refund;
    },
  };
}

const pool = createPool(url, 4);
const store = crashingStore(new PgEventStore(pool, { pollIntervalMs: 50 }), Number(afterAppends));
const stripe = StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: new URL(`http://127.0.0.1:${stripePort}`), timeoutMs: 2_000 });
const personalData = new PersonalDataVault(new PgSubjectKeyStore(pool, testMasterKey));
const side = { handlers: createCommandHandlers({ eventStore: store, clock: systemClock, personalData }), clock: systemClock, policy: { holdMinutes: 15 } };
const manager = new PaymentProcess({
  eventStore: store,
  side,
  gateway: crashingGateway(stripe, Number(afterRefunds)),
  checkpoints: new PgProcessCheckpoints(createKysely<ProcessCheckpointTables>(pool)),
  retryDelayMs: 50,
  onError: (error, what) => process.stderr.write(`payment process child: ${what}: ${String(error)}\n`),
});
await manager.run(new AbortController().signal);
