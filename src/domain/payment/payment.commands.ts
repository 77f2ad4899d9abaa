import { z } from 'zod';
import { instantSchema } from '../shared/calendar-date.js';
import { currencySchema } from '../shared/money.js';

/** Sent once the provider created the payment intent for the booking's total. */
export const initiatePaymentSchema = z.object({
  type: z.literal('InitiatePayment'),
  data: z.object({
    paymentId: z.string().min(1),
    bookingId: z.string().min(1),
    providerIntentId: z.string().min(1),
    amount: z.number().int().positive(),
    currency: currencySchema,
  }),
});

// The Record* commands translate the provider's webhooks; `providerEventId` is the webhook event id.

export const recordPaymentSucceededSchema = z.object({
  type: z.literal('RecordPaymentSucceeded'),
  data: z.object({
    paymentId: z.string().min(1),
    providerEventId: z.string().min(1),
    amount: z.number().int().nonnegative(),
    currency: z.string(),
    /** When the provider captured the money, if it said. */
    capturedAt: instantSchema.optional(),
  }),
});

export const recordPaymentFailedSchema = z.object({
  type: z.literal('RecordPaymentFailed'),
  data: z.object({ paymentId: z.string().min(1), providerEventId: z.string().min(1), reason: z.string().max(500) }),
});

export const recordPaymentCanceledSchema = z.object({
  type: z.literal('RecordPaymentCanceled'),
  data: z.object({ paymentId: z.string().min(1), providerEventId: z.string().min(1) }),
});

/** `refundId` is chosen by the caller and doubles as the provider's idempotency key. */
export const requestRefundSchema = z.object({
  type: z.literal('RequestRefund'),
  data: z.object({ paymentId: z.string().min(1), refundId: z.string().min(1), amount: z.number().int().positive() }),
});

export const recordRefundSucceededSchema = z.object({
  type: z.literal('RecordRefundSucceeded'),
  data: z.object({ paymentId: z.string().min(1), refundId: z.string().min(1), providerEventId: z.string().min(1) }),
});

export const recordRefundFailedSchema = z.object({
  type: z.literal('RecordRefundFailed'),
  data: z.object({
    paymentId: z.string().min(1),
    refundId: z.string().min(1),
    providerEventId: z.string().min(1),
    reason: z.string().max(500),
  }),
});

export const paymentCommandSchema = z.discriminatedUnion('type', [
  initiatePaymentSchema,
  recordPaymentSucceededSchema,
  recordPaymentFailedSchema,
  recordPaymentCanceledSchema,
  requestRefundSchema,
  recordRefundSucceededSchema,
  recordRefundFailedSchema,
]);
export type PaymentCommand = z.infer<typeof paymentCommandSchema>;
export type InitiatePayment = z.infer<typeof initiatePaymentSchema>;
export type RecordPaymentSucceeded = z.infer<typeof recordPaymentSucceededSchema>;
export type RecordPaymentFailed = z.infer<typeof recordPaymentFailedSchema>;
export type RecordPaymentCanceled = z.infer<typeof recordPaymentCanceledSchema>;
export type RequestRefund = z.infer<typeof requestRefundSchema>;
export type RecordRefundSucceeded = z.infer<typeof recordRefundSucceededSchema>;
export type RecordRefundFailed = z.infer<typeof recordRefundFailedSchema>;
