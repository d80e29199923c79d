import {TokenBias, type LlamaModel, type Token} from "node-llama-cpp";
import {invalidRequest} from "../core/errors.js";

/** Tokens in the model's vocabulary, from the GGUF's tokenizer list (read once: checks run per token). */
export function vocabularySize(model: LlamaModel): number {
  const tokens = (model.fileInfo.metadata as {tokenizer?: {ggml?: {tokens?: unknown}}}).tokenizer?.ggml?.tokens;
  return Array.isArray(tokens) ? tokens.length : 0;
}

/** OpenAI's logit_bias: added to the token's logit; -100 bans it (unless a grammar needs it). */
export function tokenBias(model: LlamaModel, vocabulary: number, bias: ReadonlyArray<readonly [number, number]>): TokenBias | undefined {
  if (bias.length === 0) return undefined;
  const out = new TokenBias(model.tokenizer);
  for (const [token, value] of bias) {
    if (token >= vocabulary) throw invalidRequest(`Invalid value for 'logit_bias': token ${token} is beyond this model's vocabulary (${vocabulary} tokens).`, "logit_bias", "invalid_value");
    out.set(token as Token, value <= -100 ? "never" : {logit: value});
  }
  return out;
}
