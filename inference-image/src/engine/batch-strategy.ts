import type {BatchItem, PrioritizedBatchItem} from "node-llama-cpp";

/** Empty batches returned in a row, at most, while a generating sequence has not queued. */
export const MAX_DEFERRALS = 64;

/**
 * node-llama-cpp's batch prioritization with one change: a decode waits, briefly, until
 * every sequence that is generating has queued its next token.
 *
 * Why: after a decode, node-llama-cpp resolves each sequence's token as its sampling
 * finishes, and its dispatch loop starts the next decode as soon as anything is queued.
 * The sequence whose sampling finished last is still on its way back, so with 4 busy slots
 * 98% of decodes carried 3 of them and one sequence always trailed by a decode
 * (`npm run bench:batching`). Returning no item makes the loop come straight back (a
 * microtask turn), which lets the straggler queue; after MAX_DEFERRALS turns the batch goes
 * with what is there, so a sequence busy elsewhere (tokenizing, a grammar) delays nothing
 * noticeably.
 *
 * The sharing of a batch among items is node-llama-cpp 3.21.1's `maximumParallelism`
 * (every item an equal share, leftovers to the clipped ones by evaluation priority),
 * copied because the package does not export it; leftovers given out are counted here,
 * which the original omits (its caller clamps the batch either way).
 */
export function waitForAllStrategy(generating: () => number, maxDeferrals = MAX_DEFERRALS): (input: {items: readonly BatchItem[]; size: number}) => PrioritizedBatchItem[] {
  let deferred = 0;
  return ({items, size}) => {
    if (items.length < generating() && deferred < maxDeferrals) {
      deferred++;
      return [];
    }
    deferred = 0;
    return maximumParallelism(items, size);
  };
}

export function maximumParallelism(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  let left = size;
  const share = Math.floor(left / items.length);
  const result: PrioritizedBatchItem[] = [];
  const clipped: PrioritizedBatchItem[] = [];
  for (const item of items) {
    const prioritized = {item, processAmount: Math.min(item.tokens.length, left, share)};
    result.push(prioritized);
    left -= prioritized.processAmount;
    if (prioritized.processAmount < item.tokens.length) clipped.push(prioritized);
    if (left === 0) break;
  }
  for (let passes = 3; left > 0 && clipped.length > 0 && passes > 0; passes--) {
    const increase = Math.ceil(left / clipped.length);
    for (let i = 0; i < clipped.length && left > 0; i++) {
      const p = clipped[i]!;
      const unprocessed = p.item.tokens.length - p.processAmount;
      const add = Math.min(unprocessed, left, increase);
      p.processAmount += add;
      left -= add;
      if (add === unprocessed) clipped.splice(i--, 1);
    }
  }
  clipped.sort((a, b) => b.item.evaluationPriority - a.item.evaluationPriority);
  for (let i = 0; i < clipped.length && left > 0; i++) {
    const p = clipped[i]!;
    const unprocessed = p.item.tokens.length - p.processAmount;
    const add = Math.min(unprocessed, left);
    p.processAmount += add;
    left -= add;
    if (add === unprocessed) clipped.splice(i--, 1);
  }
  return result;
}
