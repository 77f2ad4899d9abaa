import { z } from 'zod';
import { instantSchema } from '../shared/calendar-date.js';
import { currencySchema } from '../shared/money.js';

const amountSchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** The provider's id for the webhook event that told us; remembered so a redelivery changes nothing. */
const providerEventIdSchema = z.string().min(1);

export const paymentInitiatedSchema = z.object({
  type: z.literal('PaymentInitiated'),
  data: z.object({
    paymentId: z.string().min(1),
    bookingId: z.string().min(1),
    /** The provider's payment intent. */
    providerIntentId: z.string().min(1),
    amount: amountSchema,
    currency: currencySchema,
  }),
});

/**
 * `capturedAt`: when the provider took the money, by its clock (UTC). Our log records the success
 * when the news arrives, which may be long after (a late webhook, or a success learned only by
 * asking); whether the consumer paid before cancelling goes by this. Absent from successes
 * stored before it was kept, and when the provider did not say.
 */
export const paymentSucceededSchema = z.object({
  type: z.literal('PaymentSucceeded'),
  data: z.object({
    paymentId: z.string().min(1),
    providerEventId: providerEventIdSchema,
    amount: amountSchema,
    currency: currencySchema,
    capturedAt: instantSchema.optional(),
  }),
});

/** The provider reported a success for another amount or currency: recorded, but not a success. */
export const paymentMismatchSchema = z.object({
  type: z.literal('PaymentMismatch'),
  data: z.object({
    paymentId: z.string().min(1),
    providerEventId: providerEventIdSchema,
    expectedAmount: amountSchema,
    expectedCurrency: currencySchema,
    receivedAmount: z.number().int().nonnegative(),
    receivedCurrency: z.string(),
  }),
});

export const paymentFailedSchema = z.object({
  type: z.literal('PaymentFailed'),
  /** `reason` is the provider's code or message (e.g. `card_declined`), not text a person wrote. */
  data: z.object({ paymentId: z.string().min(1), providerEventId: providerEventIdSchema, reason: z.string().max(500) }),
});

export const paymentCanceledSchema = z.object({
  type: z.literal('PaymentCanceled'),
  data: z.object({ paymentId: z.string().min(1), providerEventId: providerEventIdSchema }),
});

/** Counts against the captured amount from here on, until it fails. */
export const refundRequestedSchema = z.object({
  type: z.literal('RefundRequested'),
  data: z.object({ paymentId: z.string().min(1), refundId: z.string().min(1), amount: amountSchema, currency: currencySchema }),
});

export const refundSucceededSchema = z.object({
  type: z.literal('RefundSucceeded'),
  data: z.object({ paymentId: z.string().min(1), refundId: z.string().min(1), providerEventId: providerEventIdSchema }),
});

export const refundFailedSchema = z.object({
  type: z.literal('RefundFailed'),
  data: z.object({
    paymentId: z.string().min(1),
    refundId: z.string().min(1),
    providerEventId: providerEventIdSchema,
    reason: z.string().max(500),
  }),
});

export const paymentEventSchema = z.discriminatedUnion('type', [
  paymentInitiatedSchema,
  paymentSucceededSchema,
  paymentMismatchSchema,
  paymentFailedSchema,
  paymentCanceledSchema,
  refundRequestedSchema,
  refundSucceededSchema,
  refundFailedSchema,
]);
export type PaymentEvent = z.infer<typeof paymentEventSchema>;
export type PaymentInitiated = z.infer<typeof paymentInitiatedSchema>;
export type PaymentSucceeded = z.infer<typeof paymentSucceededSchema>;
export type PaymentMismatch = z.infer<typeof paymentMismatchSchema>;
export type PaymentFailed = z.infer<typeof paymentFailedSchema>;
export type PaymentCanceled = z.infer<typeof paymentCanceledSchema>;
export type RefundRequested = z.infer<typeof refundRequestedSchema>;
export type RefundSucceeded = z.infer<typeof refundSucceededSchema>;
export type RefundFailed = z.infer<typeof refundFailedSchema>;
