import { sql, type Kysely, type Migration } from 'kysely';

/** The simulated gateway's intents and refunds: see `simulated-payment-gateway.tables.ts`. */
export const simulatedPaymentGatewayMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE simulated_payment_intents (
        intent_id  text        PRIMARY KEY,
        payment_id text        NOT NULL,
        amount     bigint      NOT NULL,
        currency   text        NOT NULL,
        status     text        NOT NULL CHECK (status IN ('awaiting-payment', 'succeeded', 'canceled')),
        succeed_at   timestamptz NOT NULL,
        succeeded_at timestamptz,
        deliver_at   timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
    // Every process polls both of these a few times a second: only the few rows due are read.
    await sql`CREATE INDEX simulated_payment_intents_awaiting ON simulated_payment_intents (succeed_at) WHERE status = 'awaiting-payment'`.execute(db);
    await sql`CREATE INDEX simulated_payment_intents_owed ON simulated_payment_intents (deliver_at) WHERE deliver_at IS NOT NULL`.execute(db);
    await sql`
      CREATE TABLE simulated_refunds (
        idempotency_key    text        PRIMARY KEY,
        provider_refund_id text        NOT NULL,
        payment_id         text        NOT NULL,
        refund_id          text        NOT NULL,
        deliver_at         timestamptz,
        created_at         timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
    await sql`CREATE INDEX simulated_refunds_owed ON simulated_refunds (deliver_at) WHERE deliver_at IS NOT NULL`.execute(db);
  },
};
