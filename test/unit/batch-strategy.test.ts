import type {BatchItem} from "node-llama-cpp";
import {maximumParallelism, waitForAllStrategy} from "../../inference-image/src/engine/batch-strategy.js";

const item = (tokens: number, evaluationPriority = 5): BatchItem => ({tokens: Array.from({length: tokens}, (_, i) => i) as never, logits: [], evaluationPriority: evaluationPriority as BatchItem["evaluationPriority"]});

describe("batch strategy", () => {
  it("holds a decode back while a generating sequence has not queued, for a bounded number of turns", () => {
    let generating = 4;
    const strategy = waitForAllStrategy(() => generating, 3);
    const three = [item(1), item(1), item(1)];
    expect(strategy({items: three, size: 512})).toEqual([]);
    expect(strategy({items: three, size: 512})).toEqual([]);
    expect(strategy({items: three, size: 512})).toEqual([]);
    // The bound: the fourth turn lets the partial batch go.
    expect(strategy({items: three, size: 512}).map((p) => p.processAmount)).toEqual([1, 1, 1]);
    // Everyone queued: at once.
    expect(strategy({items: [...three, item(1)], size: 512})).toHaveLength(4);
    generating = 2;
    expect(strategy({items: [item(1), item(1)], size: 512})).toHaveLength(2);
  });

  it("shares a batch as node-llama-cpp's maximumParallelism does, never past its size", () => {
    // A long prompt and two decoding sequences: the decodes get their token, the prompt the rest.
    const shares = maximumParallelism([item(1000), item(1), item(1)], 512).map((p) => p.processAmount);
    expect(shares).toEqual([510, 1, 1]);
    const two = maximumParallelism([item(1000, 1), item(1000, 9)], 512).map((p) => p.processAmount);
    expect(two).toEqual([256, 256]);
    expect(maximumParallelism([item(300), item(300), item(300)], 512).reduce((n, p) => n + p.processAmount, 0)).toBeLessThanOrEqual(512);
  });
});
