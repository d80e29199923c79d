import type {LlamaContextSequence, LlamaModel, Token} from "node-llama-cpp";
import type {TokenLogprob} from "../core/generation.js";
import {floored, MAX_TOP_LOGPROBS, tokenPiece} from "./scoring.js";

/**
 * What Paddock's node-llama-cpp patch (inference-image/patches) reads on a sequence: while set,
 * every token sampled on it reports its log probability under the model's own distribution
 * (softmax of the raw logits, before the sampler chain) and the `top` likeliest alternatives,
 * as `[chosen, id1, logprob1, id2, logprob2, ...]`. A binary without the patch's C++ half
 * reports `undefined`.
 */
interface RawLogprobsHook {
  readonly top: number;
  onSample(token: Token, raw: readonly number[] | undefined): void;
}
type PatchedSequence = LlamaContextSequence & {_paddockRawLogprobs?: RawLogprobsHook | undefined};

/**
 * Streamed logprobs taken from the sampler as each token is chosen (issue #24), so each
 * chunk carries its own. Samples are paired with the tokens node-llama-cpp hands over, in
 * order; a token that was not sampled (forced) or a sample without numbers (an unpatched
 * binary) ends the live path, and the reply is then scored once it ends (scoring.ts).
 *
 * A token belongs to the text piece in which its text starts, as `visibleTokens` counts: the
 * tokens of a stop string, whose text is never emitted, are never released.
 */
export class LiveLogprobs {
  readonly #samples: Array<{token: Token; raw: readonly number[] | undefined}> = [];
  #paired = 0;
  readonly #pending: TokenLogprob[] = [];
  readonly #released: TokenLogprob[] = [];
  /** Where the next pending token's text starts in the output. */
  #offset = 0;
  #broken = false;
  /** The tokens before the next one (8 are enough to decode it as it reads in context). */
  readonly #context: Token[];
  readonly #hook: RawLogprobsHook;

  /**
   * `textBefore`: the prompt tokens the reply's text continues (a completion, a prefill);
   * none for a reply that opens a turn, whose first token reads without its leading space,
   * as in the reply's text.
   */
  constructor(
    private readonly model: LlamaModel,
    private readonly sequence: LlamaContextSequence,
    textBefore: readonly Token[],
    top: number
  ) {
    this.#context = textBefore.slice(-8);
    this.#hook = {top: Math.min(MAX_TOP_LOGPROBS, Math.max(0, top)), onSample: (token, raw) => void this.#samples.push({token, raw})};
    (sequence as PatchedSequence)._paddockRawLogprobs = this.#hook;
  }

  /** Stops listening to the sequence (the slot goes back to the pool). */
  detach(): void {
    const patched = this.sequence as PatchedSequence;
    if (patched._paddockRawLogprobs === this.#hook) delete patched._paddockRawLogprobs;
  }

  /** Tokens as node-llama-cpp hands them over (each was sampled just before). */
  onTokens(tokens: readonly Token[]): void {
    for (const token of tokens) {
      const sample = this.#samples[this.#paired];
      if (this.#broken || sample?.token !== token || sample.raw === undefined) this.#broken = true;
      else {
        this.#paired++;
        this.#pending.push(this.#logprobOf(token, sample.raw));
      }
      this.#context.push(token);
      if (this.#context.length > 8) this.#context.shift();
    }
  }

  /**
   * The pending tokens whose text starts within the first `length` characters of the output
   * (the output has just grown to `length`). Undefined when the live path never worked: the
   * caller then scores the reply at the end.
   */
  release(length: number): TokenLogprob[] | undefined {
    if (!this.available) return undefined;
    const out: TokenLogprob[] = [];
    while (this.#pending.length > 0 && this.#offset < length) {
      const next = this.#pending.shift()!;
      this.#offset += next.token.length;
      out.push(next);
    }
    this.#released.push(...out);
    return out;
  }

  /** Whether the chunks carry logprobs: every token so far was sampled with its numbers, or some were already sent. */
  get available(): boolean {
    return !this.#broken || this.#released.length > 0;
  }

  /** Every token's logprobs sent with the text so far. */
  get released(): readonly TokenLogprob[] {
    return this.#released;
  }

  #logprobOf(token: Token, raw: readonly number[]): TokenLogprob {
    const before = [...this.#context];
    const piece = (t: Token) => tokenPiece(this.model, t, before);
    const top: TokenLogprob["top"][number][] = [];
    for (let i = 1; i + 1 < raw.length; i += 2) top.push({...piece(raw[i]! as Token), logprob: floored(raw[i + 1]!)});
    return {...piece(token), logprob: floored(raw[0]!), top};
  }
}

/**
 * Whether this llama.cpp binary carries the patch's C++ half: one token is sampled on an
 * idle slot with the hook set, and the slot is emptied again. Said once at start, so an
 * operator knows where logprobs come from (the CUDA image uses node-llama-cpp's prebuilt
 * binaries, which lack it).
 */
export async function samplerReportsLogprobs(model: LlamaModel, sequence: LlamaContextSequence): Promise<boolean> {
  const patched = sequence as PatchedSequence;
  let reported = false;
  patched._paddockRawLogprobs = {top: 0, onSample: (_token, raw) => void (reported = raw !== undefined)};
  try {
    const first = model.tokens.bos ?? model.tokenize("a")[0];
    if (first === undefined) return false;
    for await (const token of sequence.evaluate([first], {temperature: 0, yieldEogToken: true})) {
      void token;
      break;
    }
    return reported;
  } catch {
    return false;
  } finally {
    delete patched._paddockRawLogprobs;
    await sequence.clearHistory();
  }
}
