import type {LlamaContextSequence, LlamaModel, Token} from "node-llama-cpp";
import {LiveLogprobs} from "../../inference-image/src/engine/live-logprobs.js";

/**
 * The pairing of sampler reports with streamed tokens, on stand-ins for node-llama-cpp's
 * model (a detokenizer of a made-up vocabulary) and sequence (the object the patch reads its
 * hook from). The patch itself runs against the real model in
 * test/integration/openai-surface.test.ts.
 */
const WORDS: Record<number, string> = {10: "Once", 11: " upon", 12: " a", 13: " time", 14: "!"};
const model = {detokenize: (tokens: readonly Token[]) => tokens.map((t) => WORDS[t] ?? "?").join("")} as unknown as LlamaModel;
type Hooked = {_paddockRawLogprobs?: {top: number; onSample(token: Token, raw: readonly number[] | undefined): void}};
const setup = (top = 1) => {
  const sequence = {} as Hooked;
  const live = new LiveLogprobs(model, sequence as unknown as LlamaContextSequence, [1 as Token], top);
  // `null`: the binary reported nothing (undefined would take the default).
  const sample = (token: number, raw: readonly number[] | null = [-0.25, token, -0.25]) => sequence._paddockRawLogprobs!.onSample(token as Token, raw ?? undefined);
  return {sequence, live, sample};
};

describe("LiveLogprobs", () => {
  it("pairs each streamed token with its sample and releases it with the text it starts in", () => {
    const {live, sample} = setup();
    sample(10);
    live.onTokens([10 as Token]);
    sample(11);
    sample(12);
    live.onTokens([11 as Token, 12 as Token]);
    // "Once up": only the first two tokens start in it.
    expect(live.release(7)?.map((t) => t.token)).toEqual(["Once", " upon"]);
    expect(live.release(11)?.map((t) => t.token)).toEqual([" a"]);
    expect(live.released.map((t) => [t.token, t.logprob, t.top.map((a) => a.token)])).toEqual([
      ["Once", -0.25, ["Once"]],
      [" upon", -0.25, [" upon"]],
      [" a", -0.25, [" a"]]
    ]);
  });

  it("keeps tokens whose text never streams (a stop string's) out of the result", () => {
    const {live, sample} = setup();
    for (const t of [10, 11, 14]) sample(t);
    live.onTokens([10 as Token, 11 as Token, 14 as Token]);
    live.release("Once upon".length);
    expect(live.released.map((t) => t.token)).toEqual(["Once", " upon"]);
  });

  it("gives way to scoring when the binary reports nothing or a token was not sampled", () => {
    const unpatched = setup();
    unpatched.sample(10, null);
    unpatched.live.onTokens([10 as Token]);
    expect(unpatched.live.available).toBe(false);
    expect(unpatched.live.release(4)).toBeUndefined();

    const forced = setup();
    forced.sample(10);
    forced.live.onTokens([10 as Token, 11 as Token]); // 11 was inserted, never sampled
    expect(forced.live.release(9)).toBeUndefined();
  });

  it("floors impossible tokens at -9999 and leaves the sequence as it found it", () => {
    const {sequence, live, sample} = setup(2);
    sample(10, [-Infinity, 10, -Infinity, 11, -1]);
    live.onTokens([10 as Token]);
    expect(live.release(4)).toMatchObject([{token: "Once", logprob: -9999, top: [{token: "Once", logprob: -9999}, {token: " upon", logprob: -1}]}]);
    live.detach();
    expect("_paddockRawLogprobs" in sequence).toBe(false);
  });
});
