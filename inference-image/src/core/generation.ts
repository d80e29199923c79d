import type {InferenceRequest} from "./request.js";

/**
 * What a generation yields, and the engine as the layers above it see it: the HTTP
 * handlers, the flights and the cache know these types and never the engine itself.
 */

export type FinishReason = "stop" | "length";

/**
 * Why generation ended. `timeout` (REQUEST_TIMEOUT_SECONDS) and `aborted` (client gone)
 * produce truncated output that must never be cached.
 */
export type StopCause = "eos" | "stop_sequence" | "max_tokens" | "timeout" | "aborted";

/** An output token's log probability under the model, and the most likely alternatives. */
export interface TokenLogprob {
  readonly token: string;
  readonly logprob: number;
  readonly bytes: readonly number[];
  readonly top: ReadonlyArray<{readonly token: string; readonly logprob: number; readonly bytes: readonly number[]}>;
}

/** A call the model made of its own accord (tool_choice auto). */
export interface ModelToolCall {
  readonly name: string;
  readonly arguments: string;
}

export interface GenerationResult {
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly stopCause: StopCause;
  readonly promptTokens: number;
  /** Prompt tokens whose KV the slot already held (not evaluated again). */
  readonly cachedTokens: number;
  readonly completionTokens: number;
  /** Milliseconds spent waiting for a free slot. */
  readonly queueMs: number;
  /** Per output token, when the request asked for logprobs. */
  readonly logprobs?: readonly TokenLogprob[];
  /** The calls a model made of its own accord (tool_choice auto). */
  readonly toolCalls?: readonly ModelToolCall[];
}

export interface GenerateOptions {
  /** Aborts queueing or generation; generation then ends within one token. */
  readonly signal: AbortSignal;
  /** Whether `signal` fired because of the request deadline (vs. the client leaving). */
  readonly timedOut?: () => boolean;
  /** Called once a slot is taken, before the first token: a stream may open now. */
  readonly onStart?: () => void;
  /**
   * Text as it is produced, already cut at stop sequences, with the logprobs of the tokens
   * whose text starts in it when the request asked for them and the sampler reported them
   * (otherwise they come with the result only).
   */
  readonly onText?: (chunk: string, logprobs?: readonly TokenLogprob[]) => void;
  /** Who asks: a saved prompt state is restored only for the tenant whose request filled it. */
  readonly tenant?: string;
}

/** One embeddings input: text, or token ids (as OpenAI's clients send pre-tokenized input). */
export type EmbeddingInput = string | readonly number[];

/** What the embeddings handler needs of the engine. */
export interface Embedder {
  readonly modelName: string;
  readonly embeddingSize: number;
  embed(inputs: readonly EmbeddingInput[], signal: AbortSignal): Promise<{vectors: number[][]; promptTokens: number}>;
}

/** What the HTTP layer needs from a model; tests and benchmarks use the real one. */
export interface Engine extends Embedder {
  readonly modelName: string;
  readonly slots: {readonly size: number; readonly busy: number; readonly queued: number};
  generate(request: InferenceRequest, options: GenerateOptions): Promise<GenerationResult>;
  /** Refuses new work; queued and running generations continue. */
  stopAccepting(): void;
  memory(): Promise<{ram: number; vram: number}>;
  close(): Promise<void>;
}
