import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { Ledger, nextJourney, type LoadContext, type World } from '../bench/support/soak-load.js';
import { Traffic, type Reply, type SoakRequest } from '../bench/support/soak-traffic.js';
import { comparePositions, parsePosition } from '../src/application/ports/position.js';
import { FakeStripeServer } from './stripe/support/fake-stripe-server.js';

// The soak's read-your-writes accounting: a read counted missed must be one API.md promises,
// that is one waiting for a position a command of the same journey returned.

const world: World = { listings: [{ id: 'listing-1', ownerId: 'owner-1' }], doctorIds: ['doctor-1'], adminId: 'admin-1', firstDay: Date.parse('2030-01-07T00:00:00Z') };

/** The service as the journeys see it: answers scripted by route, every request kept. */
class ScriptedService extends Traffic {
  readonly sent: SoakRequest[] = [];
  constructor(private readonly answer: (request: SoakRequest) => Reply | Promise<Reply>) {
    super({ command: 'http://command.invalid', query: 'http://query.invalid' });
  }
  override async send(request: SoakRequest): Promise<Reply> {
    this.sent.push(request);
    return this.answer(request);
  }
  readsOf(route: string): (string | undefined)[] {
    return this.sent.filter((request) => request.route === route).map((request) => request.headers?.['consistency-position']);
  }
}

const reply = (status: number, json: unknown): Reply => ({ status, headers: new Headers(), json });
const accepted = (status: 200 | 201, id: string, position: string) => reply(status, { id, streamId: `stream-${id}`, version: 1, position });
const at = (position: string) => {
  const parsed = parsePosition(position);
  if (!parsed) throw new Error(`not a position: ${position}`);
  return parsed;
};

/**
 * `Math.random` as the journeys draw it: these values first (which journey, which option), then
 * 0.99, which takes no optional step (no replay, no payment, no reschedule, no cancel).
 */
function draws(...values: number[]): void {
  vi.restoreAllMocks();
  vi.spyOn(Math, 'random').mockImplementation(() => values.shift() ?? 0.99);
}
const bookingJourney = [0.1];
/** Browsing the listings, waiting for the ledger's latest position. */
const browseWithPosition = [0.9, 0.1, 0.1];
/** An appointment journey's draws up to reading the appointment it booked. */
const appointmentJourney = [0.5, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99];
/** One whose patient then reschedules, to the middle of the range. */
const appointmentJourneyThatReschedules = [...appointmentJourney, 0.1, 0.5, 0.5];
const startOf = (request: SoakRequest) => z.object({ start: z.string() }).parse(request.body).start;

function context(traffic: Traffic, ledger = new Ledger()): LoadContext {
  return { traffic, ledger, world, stripe: new FakeStripeServer(), webhookSecret: 'whsec_test' };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the soak\'s read-your-writes accounting', () => {
  it('given two bookings answered out of order (the one at 9.0 first), when a user browses, then the read waits for 9.0, the highest, not 5.0, the last', async () => {
    const positions = ['9.0', '5.0'];
    const service = new ScriptedService((request) => (request.method === 'POST' ? accepted(201, `booking-${positions.length}`, positions.shift() ?? '0.0') : reply(200, { items: [] })));
    const ledger = new Ledger();
    const ctx = context(service, ledger);

    for (const journey of [bookingJourney, bookingJourney, browseWithPosition]) {
      draws(...journey);
      await nextJourney(ctx);
    }

    expect(ledger.latestPosition).toBe('9.0');
    expect(service.readsOf('GET /v1/listings')).toEqual(['9.0']);
  });

  it('given another user\'s command answered at 5.0 while a patient reads the appointment it booked at 10.0, then the day\'s slots are read at 10.0 and show the slot taken', async () => {
    let booked = '';
    const ledger = new Ledger();
    const service = new ScriptedService(async (request) => {
      if (request.route === 'POST /v1/appointments') {
        booked = startOf(request);
        return accepted(201, 'appointment-1', '10.0');
      }
      if (request.route === 'POST /v1/bookings') return accepted(201, 'booking-1', '5.0');
      if (request.route === 'GET /v1/appointments/:id') {
        // Another user's journey, whose answer comes back now: lower, for it was written earlier.
        await nextJourney(ctx);
        return reply(200, {});
      }
      // A read model exactly at the position waited for: the slot shows taken from 10.0 on.
      const position = request.headers?.['consistency-position'] ?? '0.0';
      const items = comparePositions(at(position), at('10.0')) < 0 ? [{ start: booked }] : [];
      return reply(200, { items });
    });
    const ctx = context(service, ledger);
    draws(...appointmentJourney, ...bookingJourney);

    await nextJourney(ctx);

    expect(service.readsOf('GET /v1/doctors/:id/slots')).toEqual(['10.0']);
    expect(ledger.missedWrites).toEqual([]);
  });

  it('given a reschedule refused with 409 after the service moved the slot and moved it back at 11.0, then the day\'s slots are read at 11.0, its Event-Position, and show the held slot taken', async () => {
    let held = '';
    const service = new ScriptedService((request) => {
      if (request.route === 'POST /v1/appointments') {
        held = startOf(request);
        return accepted(201, 'appointment-1', '10.0');
      }
      if (request.route === 'POST /v1/appointments/:id/reschedule') {
        return { status: 409, headers: new Headers({ 'event-position': '11.0' }), json: { type: 'https://bookable.example/problems/patient-overlap', status: 409 } };
      }
      if (request.route === 'GET /v1/appointments/:id') return reply(200, {});
      // Read before the refusal's position 11.0, the held slot shows free (a scripted service: the check is the soak's, whatever moved).
      const position = request.headers?.['consistency-position'] ?? '0.0';
      return reply(200, { items: comparePositions(at(position), at('11.0')) < 0 ? [{ start: held }] : [] });
    });
    const ledger = new Ledger();
    draws(...appointmentJourneyThatReschedules);

    await nextJourney(context(service, ledger));

    expect(service.sent.map((request) => `${request.route} ${request.headers?.['consistency-position'] ?? ''}`.trim())).toEqual([
      'POST /v1/appointments',
      'GET /v1/appointments/:id 10.0',
      'POST /v1/appointments/:id/reschedule',
      'GET /v1/doctors/:id/slots 11.0',
    ]);
    expect(ledger.missedWrites).toEqual([]);
    expect([...ledger.appointments.values()]).toEqual([expect.objectContaining({ start: held, reschedules: 0 })]);
  });

  it('given a reschedule refused with 409 before anything moved (no Event-Position), then the held slot showing free at 10.0 is a missed write', async () => {
    let held = '';
    const service = new ScriptedService((request) => {
      if (request.route === 'POST /v1/appointments') {
        held = startOf(request);
        return accepted(201, 'appointment-1', '10.0');
      }
      if (request.route === 'POST /v1/appointments/:id/reschedule') return reply(409, { type: 'https://bookable.example/problems/patient-overlap', status: 409 });
      if (request.route === 'GET /v1/appointments/:id') return reply(200, {});
      // Nothing moved, so nothing excuses the held slot showing free.
      return reply(200, { items: [{ start: held }] });
    });
    const ledger = new Ledger();
    draws(...appointmentJourneyThatReschedules);

    await nextJourney(context(service, ledger));

    expect(service.readsOf('GET /v1/doctors/:id/slots')).toEqual(['10.0']);
    expect(ledger.missedWrites).toHaveLength(1);
  });

  it('given a reschedule accepted at 12.0, then the day\'s slots are read at 12.0 and show the new slot taken', async () => {
    let moved = '';
    const service = new ScriptedService((request) => {
      if (request.route === 'POST /v1/appointments') return accepted(201, 'appointment-1', '10.0');
      if (request.route === 'POST /v1/appointments/:id/reschedule') {
        moved = startOf(request);
        return accepted(200, 'appointment-1', '12.0');
      }
      if (request.route === 'GET /v1/appointments/:id') return reply(200, {});
      // A read model exactly at the position waited for: the new slot shows taken from 12.0 on.
      const position = request.headers?.['consistency-position'] ?? '0.0';
      return reply(200, { items: comparePositions(at(position), at('12.0')) < 0 ? [{ start: moved }] : [] });
    });
    const ledger = new Ledger();
    draws(...appointmentJourneyThatReschedules);

    await nextJourney(context(service, ledger));

    expect(service.readsOf('GET /v1/doctors/:id/slots')).toEqual(['12.0']);
    expect(ledger.missedWrites).toEqual([]);
    expect([...ledger.appointments.values()]).toEqual([expect.objectContaining({ start: moved, reschedules: 1 })]);
  });
});

/** A booking journey whose consumer pays (the payment's Stripe webhook delivered once), then stops there. */
const bookingJourneyThatPays = [0.1, 0.99, 0.99, 0.99, 0.99, 0.99, 0.1];

/** The service for a journey that books and pays: the payment's intent made at "Stripe", its webhook answered `webhookStatus`. */
function payingService(stripe: FakeStripeServer, webhookStatus: number): ScriptedService {
  return new ScriptedService((request) => {
    if (request.route === 'POST /v1/bookings') return accepted(201, 'booking-1', '5.0');
    if (request.route === 'POST /v1/bookings/:id/payments') {
      const intent = { id: 'pi_1', object: 'payment_intent', amount: 10_000, amount_received: 0, currency: 'eur', status: 'requires_payment_method', client_secret: 's', metadata: { paymentId: 'payment-1' }, latest_charge: null } as const;
      stripe.intents.set(intent.id, { ...intent, metadata: { ...intent.metadata } });
      return reply(201, { paymentId: 'payment-1', position: '6.0' });
    }
    if (request.route === 'POST /v1/webhooks/stripe') return reply(webhookStatus, webhookStatus === 200 ? { received: true } : { type: 'https://bookable.example/problems/overloaded', status: webhookStatus });
    return reply(200, {});
  });
}

describe('the soak\'s webhook deliveries', () => {
  it('given Stripe\'s webhook answered 200, then the payment counts as paid and the delivery as accepted, and nothing is amiss', async () => {
    const ctx = context(new ScriptedService(() => reply(200, {})));
    const service = payingService(ctx.stripe, 200);
    draws(...bookingJourneyThatPays);

    await nextJourney({ ...ctx, traffic: service });

    expect(service.sent.map((request) => request.route)).toContain('POST /v1/webhooks/stripe');
    expect(ctx.ledger.payments.get('payment-1')).toEqual({ bookingId: 'booking-1', webhookAccepted: true });
    expect(ctx.ledger.webhookDeliveries).toBe(1);
    expect(ctx.ledger.violations).toEqual([]);
  });

  it('given Stripe\'s webhook answered anything but 200 (here a 503), then it is a violation, and no accepted delivery is counted', async () => {
    const ctx = context(new ScriptedService(() => reply(200, {})));
    draws(...bookingJourneyThatPays);

    await nextJourney({ ...ctx, traffic: payingService(ctx.stripe, 503) });

    expect(ctx.ledger.payments.get('payment-1')).toEqual({ bookingId: 'booking-1', webhookAccepted: false });
    expect(ctx.ledger.webhookDeliveries).toBe(0);
    expect(ctx.ledger.violations).toEqual(['POST /v1/webhooks/stripe: a delivery for the payment of booking booking-1 answered 503, not 200']);
  });
});
