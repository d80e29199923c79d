import type {ControlledEvaluateInputItem, LlamaContextSequence, LlamaModel, Token} from "node-llama-cpp";
import type {TokenLogprob} from "../core/generation.js";

/** OpenAI's stand-in for the log probability of a token the model gives no chance: finite, as JSON needs. */
export const LOGPROB_FLOOR = -9999;

/** A log probability as JSON can carry it: at least the floor, never -Infinity or NaN. */
export const floored = (logprob: number) => (Number.isFinite(logprob) ? Math.max(LOGPROB_FLOOR, logprob) : LOGPROB_FLOOR);

/** A token's text (and its UTF-8 bytes) as it reads after `before` (up to 8 tokens are enough). */
export function tokenPiece(model: LlamaModel, token: Token, before: readonly Token[]): {token: string; bytes: number[]} {
  const text = model.detokenize([token], false, before);
  return {token: text, bytes: [...Buffer.from(text, "utf8")]};
}

/**
 * The generated tokens whose text starts inside the output (a stop string's tokens are cut
 * with it). `before`: the prompt tokens the text was decoded after (none for a reply that
 * opens a turn).
 */
export function visibleTokens(model: LlamaModel, generated: readonly Token[], text: string, before: readonly Token[] = []): Token[] {
  const all = [...before.slice(-8), ...generated];
  const start = all.length - generated.length;
  let offset = 0;
  let i = 0;
  for (; i < generated.length && offset < text.length; i++) offset += model.detokenize([generated[i]!], false, all.slice(Math.max(0, start + i - 8), start + i)).length;
  return generated.slice(0, i);
}

/** OpenAI's ceiling on alternatives per token (`top_logprobs`), which also bounds the work per token. */
export const MAX_TOP_LOGPROBS = 20;

/**
 * Positions scored per decode. Each position with logits takes a vocabulary-wide row of
 * llama.cpp's output buffer (4 bytes x 128k = 0.5 MB on a Llama-3 vocabulary), which it
 * keeps at its largest: 1,000 positions at once grew the replica by 0.5 GB.
 */
export const SCORE_CHUNK = 32;

/**
 * Log probabilities of the output tokens under the model itself (temperature 1, no
 * truncation), whatever sampler chose them: the KV of the reply is evaluated once more,
 * teacher-forced in one batch (the cost of processing that many prompt tokens), and
 * ends as it was, so the slot's prefix cache is unchanged.
 *
 * Per position only the chosen token's logit, the `top` highest and the softmax's total
 * weight cross into JavaScript (node-llama-cpp's logit filter): logprob = logit - max -
 * ln(total). Asking for the probabilities instead built a Map of the whole vocabulary per
 * token (128k entries on a Llama-3 vocabulary), held and sorted on the main thread: 1,000
 * tokens with logprobs took seconds and gigabytes (issue #26).
 */
export async function scoreTokens(model: LlamaModel, sequence: LlamaContextSequence, evaluated: readonly Token[], tokens: readonly Token[], top: number, textBefore: readonly Token[] = evaluated): Promise<TokenLogprob[]> {
  if (tokens.length === 0) return [];
  const k = Math.min(MAX_TOP_LOGPROBS, Math.max(0, top));
  const promptEnd = evaluated.length - 1;
  await sequence.eraseContextTokenRanges([{start: promptEnd, end: sequence.nextTokenIndex}]);
  const raw = {temperature: 1, topK: 0, topP: 1, minP: 0};
  const input: ControlledEvaluateInputItem[] = [evaluated[promptEnd]!, ...tokens.slice(0, -1)].map((t, i) => [
    t,
    {generateNext: {logits: {filter: {tokens: [tokens[i]!], includeTop: k, includeMax: true}}, totalLogitWeight: true, options: raw}}
  ]);
  const out: Awaited<ReturnType<typeof sequence.controlledEvaluate>> = [];
  for (let i = 0; i < input.length; i += SCORE_CHUNK) out.push(...(await sequence.controlledEvaluate(input.slice(i, i + SCORE_CHUNK))));
  // A token's text depends on what precedes it (SentencePiece drops a word's leading space
  // at the start of a text): each is detokenized after the tokens before it, and the first
  // after `textBefore`, as the reply's text was (none for a reply that opens a turn).
  const context = textBefore.slice(-8);
  const piece = (t: Token, before: readonly Token[]) => tokenPiece(model, t, before);
  return tokens.map((t, i) => {
    const next = out[i]?.next;
    const logits = next?.logits ?? new Map<Token, number>();
    const logOf = logprobOf(logits, next?.totalLogitWeight);
    const best = [...logits].sort((a, b) => b[1] - a[1]).slice(0, k);
    const before = context.slice(-8);
    context.push(t);
    return {...piece(t, before), logprob: logOf(t), top: best.map(([alt]) => ({...piece(alt, before), logprob: logOf(alt)}))};
  });
}

/** log softmax from a few logits, the highest among them, and the total weight sum(exp(logit - max)). */
export function logprobOf(logits: ReadonlyMap<Token, number>, totalWeight: number | undefined): (t: Token) => number {
  let max = -Infinity;
  for (const v of logits.values()) if (v > max) max = v;
  const logTotal = totalWeight !== undefined && totalWeight > 0 ? Math.log(totalWeight) : NaN;
  return (t) => {
    const logit = logits.get(t);
    if (logit === undefined || !Number.isFinite(logTotal)) return LOGPROB_FLOOR;
    return floored(logit - max - logTotal);
  };
}
