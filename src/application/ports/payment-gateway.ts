/**
 * The payment provider (Stripe, or the simulated one). Every call that creates something takes
 * our own deterministic `idempotencyKey`: a retry after a crash or a timeout, in this process or
 * another, reaches the provider with the same key and gets the first answer back instead of a
 * second intent or a second refund.
 */
export interface PaymentGateway {
  /** A name for logs and metrics, e.g. `stripe` or `simulated`. */
  readonly name: string;

  /** Creates the intent the client pays with its client secret. */
  createIntent(request: CreateIntentRequest): Promise<ProviderIntent>;

  /**
   * The intent as the provider sees it now; `undefined` when it does not know the id. `quick`
   * bounds the look, for a caller that must not wait on the provider (a sweep); without it, the
   * adapter's own timeout and retries apply. An adapter that answers at once may ignore it.
   */
  retrieveIntent(intentId: string, quick?: QuickLook): Promise<ProviderIntent | undefined>;

  /**
   * Cancels an intent nobody should pay any more. An intent that can no longer be canceled
   * (it succeeded meanwhile, or was canceled already) is an answer, not an error.
   */
  cancelIntent(request: CancelIntentRequest): Promise<CancelIntentResult>;

  /**
   * Gives back part or all of what an intent captured, at most once per `refundId`: a retry (ours,
   * or a call after one whose outcome was lost) answers the refund an earlier try made, even when
   * the provider kept a failure as the first key's answer.
   */
  createRefund(request: CreateRefundRequest): Promise<ProviderRefund>;

  /**
   * The refund made for `refundId`, as the provider has it now; `undefined` when none was made
   * (yet: its create may still be retried). Only looks, never makes one: for a caller that
   * settles a refund whose outcome event never came. `quick` bounds the look, as for `retrieveIntent`.
   */
  retrieveRefund(request: RetrieveRefundRequest, quick?: QuickLook): Promise<ProviderRefund | undefined>;
}

/** One bounded look: at most `retries` more tries after the first, each given up after `timeoutMs`. */
export type QuickLook = { readonly timeoutMs: number; readonly retries: number };

/**
 * The look made where someone waits on it: the serial sweeps of hold expiry and refund
 * reconciliation (with the SDK's own timeout and retries, 20 s and four tries in production, a
 * Stripe down held every lapsed booking behind it for over a minute per attempt) and the webhook,
 * which answers Stripe within its timeout.
 */
export const quickLook: QuickLook = { timeoutMs: 3_000, retries: 0 };

/** How the provider reports an intent's life: only what our flow tells apart. */
export type ProviderIntentStatus = 'awaiting-payment' | 'processing' | 'succeeded' | 'canceled';

export type ProviderIntent = {
  readonly intentId: string;
  /** Handed to the paying client only; never stored in an event. */
  readonly clientSecret: string;
  readonly status: ProviderIntentStatus;
  readonly amount: number;
  /** What the provider took, in minor units of `currency`: 0 until the intent succeeds. */
  readonly amountReceived: number;
  readonly currency: string;
  /** When the provider took the money (ISO 8601, UTC), once it has and if it says. */
  readonly capturedAt?: string;
};

export type CreateIntentRequest = {
  readonly paymentId: string;
  readonly bookingId: string;
  /** Minor units of `currency`. */
  readonly amount: number;
  /** ISO 4217, upper case. */
  readonly currency: string;
  readonly idempotencyKey: string;
};

/**
 * No idempotency key: a cancel is idempotent by nature (a second one finds the intent canceled),
 * and under a fixed key the provider replays its first answer for a day. A cancel refused while
 * the intent was `processing` would be refused again after a failed debit made it cancelable,
 * and a payable intent left open for a booking that is over.
 */
export type CancelIntentRequest = { readonly intentId: string };

export type CancelIntentResult =
  | { readonly outcome: 'canceled' }
  /** It succeeded, or is being processed: the money may come, so whoever sees it must refund it. */
  | { readonly outcome: 'not-cancelable'; readonly status: ProviderIntentStatus };

export type CreateRefundRequest = {
  readonly intentId: string;
  readonly paymentId: string;
  /** Our refund id; the provider keeps it in the refund's metadata, so its webhooks name it. */
  readonly refundId: string;
  readonly amount: number;
  readonly idempotencyKey: string;
};

/** A refund asked after by our ids: the intent it gives back from, and our refund id (in its metadata). */
export type RetrieveRefundRequest = {
  readonly intentId: string;
  readonly paymentId: string;
  readonly refundId: string;
};

export type ProviderRefund = {
  readonly providerRefundId: string;
  /** `pending`: the outcome arrives later as a provider event. */
  readonly status: 'pending' | 'succeeded' | 'failed';
  /** The provider's reason when it failed. */
  readonly failureReason?: string;
};

/**
 * The provider refused the request for good (unknown intent, an amount it will not refund): a
 * retry would get the same answer. Transient failures (network, 5xx, rate limits) are thrown as
 * they are, and are worth retrying.
 */
export class ProviderRefusedError extends Error {
  override readonly name = 'ProviderRefusedError';
  constructor(
    /** The provider's code for the refusal, e.g. `resource_missing`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The provider could not be reached or failed (network, its 5xx, a rate limit): the request may
 * pass on a retry. Carries the provider's own error as `cause`, for the log only.
 */
export class ProviderUnavailableError extends Error {
  override readonly name = 'ProviderUnavailableError';
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
  }
}

/**
 * The idempotency keys, in one place so that every caller (a request, the process manager, a
 * retry after a crash) derives the very same key for the very same step. A payment id already
 * names its attempt (see `paymentIdFor`), so a new attempt gets new keys.
 */
export const idempotencyKeys = {
  createIntent: (paymentId: string) => `bookable:payment:${paymentId}:create-intent`,
  createRefund: (paymentId: string, refundId: string) => `bookable:payment:${paymentId}:refund:${refundId}`,
  /**
   * The key of try `attempt` (from 1) of the same step, for a provider that keeps a failure as a
   * key's answer: the first try keeps the step's own key, so keys already sent still mean the same.
   */
  attempt: (key: string, attempt: number) => (attempt <= 1 ? key : `${key}:attempt-${attempt}`),
};
