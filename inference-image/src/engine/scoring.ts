import type {ControlledEvaluateInputItem, LlamaContextSequence, LlamaModel, Token} from "node-llama-cpp";
import type {TokenLogprob} from "../core/generation.js";

/** OpenAI's stand-in for the log probability of a token the model gives no chance: finite, as JSON needs. */
export const LOGPROB_FLOOR = -9999;

/** The generated tokens whose text starts inside the output (a stop string's tokens are cut with it). */
export function visibleTokens(model: LlamaModel, generated: readonly Token[], text: string): Token[] {
  let offset = 0;
  let i = 0;
  for (; i < generated.length && offset < text.length; i++) offset += model.detokenize([generated[i]!], false, generated.slice(Math.max(0, i - 8), i)).length;
  return generated.slice(0, i);
}

/**
 * Log probabilities of the output tokens under the model itself (temperature 1, no
 * truncation), whatever sampler chose them: the KV of the reply is evaluated once more,
 * teacher-forced in one batch (the cost of processing that many prompt tokens), and
 * ends as it was, so the slot's prefix cache is unchanged.
 */
export async function scoreTokens(model: LlamaModel, sequence: LlamaContextSequence, evaluated: readonly Token[], tokens: readonly Token[], top: number): Promise<TokenLogprob[]> {
  if (tokens.length === 0) return [];
  const promptEnd = evaluated.length - 1;
  await sequence.eraseContextTokenRanges([{start: promptEnd, end: sequence.nextTokenIndex}]);
  const raw = {temperature: 1, topK: 0, topP: 1, minP: 0};
  const input: ControlledEvaluateInputItem[] = [evaluated[promptEnd]!, ...tokens.slice(0, -1)].map((t) => [t, {generateNext: {probabilities: true, options: raw}}]);
  const out = await sequence.controlledEvaluate(input);
  // A token's text depends on what precedes it (SentencePiece drops a word's leading space
  // at the start of a text): each is detokenized after the tokens before it.
  const context = evaluated.slice(-8);
  const piece = (t: Token, before: readonly Token[]) => {
    const text = model.detokenize([t], false, before);
    return {token: text, bytes: [...Buffer.from(text, "utf8")]};
  };
  const logOf = (p: number | undefined) => (p !== undefined && p > 0 ? Math.max(LOGPROB_FLOOR, Math.log(p)) : LOGPROB_FLOOR);
  return tokens.map((t, i) => {
    const probabilities = out[i]?.next.probabilities ?? new Map<Token, number>();
    const best = top > 0 ? [...probabilities].sort((a, b) => b[1] - a[1]).slice(0, top) : [];
    const before = context.slice(-8);
    context.push(t);
    return {...piece(t, before), logprob: logOf(probabilities.get(t)), top: best.map(([alt, p]) => ({...piece(alt, before), logprob: logOf(p)}))};
  });
}
