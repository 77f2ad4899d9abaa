/**
 * At most `concurrency` sends in flight; what arrives meanwhile waits, and goes as one batch when
 * a send finishes. A lone item is sent at once, alone, so a quiet service pays no latency for it;
 * a busy one pays one round trip per batch instead of per item, and for appends one commit (group
 * commit).
 *
 * `one` sends a single item. `many` sends several in one transaction and answers each with its
 * own outcome, so that one item's refusal leaves the others be. When `many` fails as a whole (a
 * fault, not a refusal), each item of the batch is sent again alone, one after the other in the
 * batch's place: its fault, if it has one, is then its own. That is safe because a send is
 * idempotent (events carry their ids; reads change nothing).
 */
export class Batcher<Item, Result> {
  private readonly waiting: Array<Waiting<Item, Result>> = [];
  private inFlight = 0;

  constructor(
    private readonly one: (item: Item) => Promise<Result>,
    private readonly many: (items: readonly Item[]) => Promise<ReadonlyArray<Outcome<Result>>>,
    private readonly limits: { readonly concurrency: number; readonly maxBatch: number },
  ) {
    if (!(limits.concurrency >= 1 && limits.maxBatch >= 1)) throw new RangeError('Batcher needs a concurrency and a batch size of at least 1');
  }

  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.sendWhatWaits();
    });
  }

  private sendWhatWaits(): void {
    while (this.inFlight < this.limits.concurrency && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.limits.maxBatch);
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.sendWhatWaits();
      });
    }
  }

  private async send(batch: ReadonlyArray<Waiting<Item, Result>>): Promise<void> {
    const [only] = batch;
    if (batch.length === 1 && only) return settle(only, this.one(only.item));
    let outcomes: ReadonlyArray<Outcome<Result>>;
    try {
      outcomes = await this.many(batch.map((waiting) => waiting.item));
    } catch {
      for (const waiting of batch) await settle(waiting, this.one(waiting.item));
      return;
    }
    for (const [index, waiting] of batch.entries()) {
      const outcome = outcomes[index];
      if (!outcome) waiting.reject(new Error(`batcher: no outcome for item ${index + 1} of ${batch.length}`));
      else if (outcome.ok) waiting.resolve(outcome.value);
      else waiting.reject(outcome.error);
    }
  }
}

/** What `many` answers for one item: its result, or why it was refused. */
export type Outcome<Result> = { readonly ok: true; readonly value: Result } | { readonly ok: false; readonly error: unknown };

type Waiting<Item, Result> = {
  readonly item: Item;
  resolve(result: Result): void;
  reject(error: unknown): void;
};

async function settle<Item, Result>(waiting: Waiting<Item, Result>, result: Promise<Result>): Promise<void> {
  try {
    waiting.resolve(await result);
  } catch (error) {
    waiting.reject(error);
  }
}
