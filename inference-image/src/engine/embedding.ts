import type {LlamaEmbeddingContext, LlamaModel, Token} from "node-llama-cpp";
import {ApiError, invalidRequest, queueFull} from "../core/errors.js";
import type {EmbeddingInput} from "../core/generation.js";

/**
 * Embeddings from the same model file, in one embedding context beside the generation
 * slots: created on the first request (its KV memory is spent only by servers that embed),
 * one sequence of the server's context size, requests taking turns. So embedding can
 * use at most that one context's compute while the slots keep theirs. Requests waiting
 * their turn are bounded like the slots' queue (429 beyond it), and one whose signal fires
 * (client gone, deadline) leaves the line without running.
 */
export class Embeddings {
  #queue: Promise<void> = Promise.resolve();
  #context: Promise<LlamaEmbeddingContext> | undefined;
  /** Requests taking or waiting for their turn. */
  #waiting = 0;

  constructor(
    private readonly model: LlamaModel,
    /** Tokens one input may hold. */
    private readonly contextSize: number,
    private readonly vocabulary: number,
    private readonly threads: number | undefined,
    /** Requests allowed to wait for their turn beyond the one running (MAX_QUEUE). */
    private readonly maxQueue: number
  ) {}

  get size(): number {
    return this.model.embeddingVectorSize;
  }

  async embed(inputs: readonly EmbeddingInput[], signal: AbortSignal): Promise<{vectors: number[][]; promptTokens: number}> {
    const tokenized = inputs.map((input, i) => this.#tokenize(input, i, inputs.length));
    if (this.#waiting > this.maxQueue) throw queueFull(1);
    this.#waiting++;
    const run = this.#queue.then(async () => {
      if (signal.aborted) throw signal.reason;
      const context = await this.#embeddingContext();
      const vectors: number[][] = [];
      for (const tokens of tokenized) {
        if (signal.aborted) throw signal.reason;
        vectors.push([...(await context.getEmbeddingFor(tokens)).vector]);
      }
      return {vectors, promptTokens: tokenized.reduce((a, t) => a + t.length, 0)};
    });
    this.#queue = run.then(() => undefined, () => undefined);
    return run.finally(() => this.#waiting--);
  }

  /** Held in use but forgotten on failure: the next request tries again (it stayed failed for good before). */
  #embeddingContext(): Promise<LlamaEmbeddingContext> {
    this.#context ??= this.model.createEmbeddingContext({contextSize: this.contextSize, ...(this.threads ? {threads: this.threads} : {})});
    const context = this.#context;
    context.catch(() => {
      if (this.#context === context) this.#context = undefined;
    });
    return context;
  }

  get queued(): number {
    return Math.max(0, this.#waiting - 1);
  }

  async close(): Promise<void> {
    await (await this.#context?.catch(() => undefined))?.dispose();
  }

  #tokenize(input: EmbeddingInput, i: number, count: number): Token[] {
    const at = count > 1 ? `input[${i}]` : "input";
    const tokens = typeof input === "string" ? this.model.tokenize(input) : (input as Token[]);
    if (tokens.length > this.contextSize) {
      throw new ApiError(400, "invalid_request_error", "context_length_exceeded", `This model's maximum context length is ${this.contextSize} tokens. However, ${at} has ${tokens.length} tokens.`, at);
    }
    // An id beyond the vocabulary would make llama.cpp read out of bounds: refuse it here.
    if (typeof input !== "string" && tokens.some((t) => t >= this.vocabulary)) throw invalidRequest(`${at} holds a token id beyond this model's vocabulary (${this.vocabulary} tokens)`, "input", "invalid_value");
    return tokens;
  }
}
