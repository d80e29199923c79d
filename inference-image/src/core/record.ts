import type {FinishReason, ModelToolCall, TokenLogprob} from "./generation.js";

/**
 * Everything needed to render a finished completion in any of the API's shapes: what the
 * response formatter renders and the response cache stores.
 */
export interface CompletionRecord {
  /** Text pieces in the order they were produced; joined they are the completion. */
  readonly chunks: readonly string[];
  readonly finishReason: FinishReason;
  readonly promptTokens: number;
  /** Prompt tokens not evaluated again: reused from the slot's KV cache, or all of them for a response-cache hit. */
  readonly cachedTokens?: number;
  readonly completionTokens: number;
  /** Per output token, when asked for. */
  readonly logprobs?: readonly TokenLogprob[];
  /** Calls the model made of its own accord (tool_choice auto). */
  readonly toolCalls?: readonly ModelToolCall[];
}
