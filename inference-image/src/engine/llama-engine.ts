import {
  getLlama,
  getLlamaGpuTypes,
  LlamaChat,
  LlamaCompletion,
  LlamaLogLevel,
  LlamaText,
  resolveChatWrapper,
  TokenBias,
  type ChatHistoryItem,
  type ChatModelFunctions,
  type ChatWrapper,
  type ControlledEvaluateInputItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token
} from "node-llama-cpp";
import type {ServerConfig} from "./config.js";
import {ApiError, contextLengthExceeded, invalidRequest} from "./errors.js";
import type {InferenceRequest, Prompt, ResponseFormat, Tools} from "./openai-request.js";
import {forcedCall, toolCallSchema} from "./tool-calls.js";
import {backendProblem, offloadProblem} from "./gpu-requirement.js";
import {toChatHistory} from "./chat-history.js";
import {chooseSlot, commonPrefix, SlotPool, type SlotPoolObserver} from "./slot-pool.js";
import {PromptCache, type PromptCacheObserver} from "./prompt-cache.js";
import {OPEN_TENANT} from "./api-keys.js";
import type {EmbeddingInput, Embedder} from "./embeddings.js";
import {JsonCloser} from "./json-closer.js";
import {waitForAllStrategy} from "./batch-strategy.js";
import {StopDetector} from "./stop-detector.js";

export type FinishReason = "stop" | "length";

/**
 * Why generation ended. `timeout` (REQUEST_TIMEOUT_SECONDS) and `aborted` (client gone)
 * produce truncated output that must never be cached.
 */
export type StopCause = "eos" | "stop_sequence" | "max_tokens" | "timeout" | "aborted";

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
  readonly toolCalls?: ReadonlyArray<{readonly name: string; readonly arguments: string}>;
}

/** An output token's log probability under the model, and the most likely alternatives. */
export interface TokenLogprob {
  readonly token: string;
  readonly logprob: number;
  readonly bytes: readonly number[];
  readonly top: ReadonlyArray<{readonly token: string; readonly logprob: number; readonly bytes: readonly number[]}>;
}

/** OpenAI's stand-in for the log probability of a token the model gives no chance: finite, as JSON needs. */
const LOGPROB_FLOOR = -9999;

export interface GenerateOptions {
  /** Aborts queueing or generation; generation then ends within one token. */
  readonly signal: AbortSignal;
  /** Whether `signal` fired because of the request deadline (vs. the client leaving). */
  readonly timedOut?: () => boolean;
  /** Called once a slot is taken, before the first token: a stream may open now. */
  readonly onStart?: () => void;
  /** Text as it is produced, already cut at stop sequences. */
  readonly onText?: (chunk: string) => void;
  /** Who asks: a saved prompt state is restored only for the tenant whose request filled it. */
  readonly tenant?: string;
}

/** Per-token timing hook, so the engine reports latency without importing metrics. */
export interface TokenObserver {
  onInterToken(seconds: number): void;
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

/** GPU_REQUIRED is set and the model would run on the CPU; the message says what to check. */
export class GpuUnavailableError extends Error {
  override name = "GpuUnavailableError";
}

export interface LlamaEngineOptions {
  readonly config: Pick<
    ServerConfig,
    "modelPath" | "modelName" | "parallelSlots" | "contextSize" | "maxQueue" | "gpu" | "gpuRequired" | "gpuLayers" | "threads" | "chatWrapper" | "flashAttention" | "promptCache"
  >;
  readonly poolObserver?: SlotPoolObserver;
  readonly tokenObserver?: TokenObserver;
  readonly promptCacheObserver?: PromptCacheObserver;
  readonly log?: (level: "info" | "warn" | "error", message: string) => void;
}

/** Compiled response-format grammars kept; older ones are compiled again when asked for. */
const MAX_GRAMMARS = 64;

/** Tokens kept for OpenAI-style presence/frequency penalties (llama.cpp's window). */
const PENALTY_WINDOW_TOKENS = 256;

/**
 * The model and one context whose sequences are the parallel slots. node-llama-cpp batches
 * every active sequence of a context into one decode call, so N slots really run together.
 */
export class LlamaEngine implements Engine {
  private constructor(
    readonly modelName: string,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly pool: SlotPool<LlamaContextSequence>,
    private readonly chatWrapper: ChatWrapper,
    private readonly tokenObserver: TokenObserver | undefined,
    private readonly threads: number | undefined,
    /** Sequences between the start and the end of their generation (the batch strategy waits for them). */
    private readonly generating: {count: number},
    private readonly promptCache: PromptCache | undefined
  ) {}

  static async load(options: LlamaEngineOptions): Promise<LlamaEngine> {
    const {config, log} = options;
    const llama = await getLlama({
      gpu: config.gpu === "off" ? false : config.gpu,
      build: "never",
      maxThreads: config.threads,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text === "" || /bad special token/.test(text)) return;
        log?.(level === LlamaLogLevel.error || level === LlamaLogLevel.fatal ? "error" : "warn", text);
      }
    });
    // A GPU that was asked for and is not used would serve ~50x slower; refuse rather than
    // let it pass for a healthy replica.
    const noBackend = backendProblem({required: config.gpuRequired, mode: config.gpu, backend: llama.gpu, supported: config.gpuRequired ? await getLlamaGpuTypes("supported") : []});
    if (noBackend) {
      await llama.dispose();
      throw new GpuUnavailableError(noBackend);
    }
    const model = await llama.loadModel({modelPath: config.modelPath, gpuLayers: config.gpuLayers});
    if (config.gpuRequired) {
      const vram = await llama.getVramState();
      const noLayers = offloadProblem({required: true, backend: llama.gpu, offloaded: model.gpuLayers, requested: config.gpuLayers, vramFree: vram.free, vramTotal: vram.total});
      if (noLayers) {
        await model.dispose();
        await llama.dispose();
        throw new GpuUnavailableError(noLayers);
      }
    }
    // `auto` keeps node-llama-cpp's choice (on). Measured on this CPU for a 1,000-token prompt:
    // off is 2.8x faster for the tiny model (head dim 8), but 16-19% slower for 64-dim heads.
    const generating = {count: 0};
    const context = await model.createContext({
      sequences: config.parallelSlots,
      contextSize: config.contextSize,
      threads: config.threads,
      // A decode carries every generating sequence's token (see batch-strategy.ts).
      batching: {itemPrioritizationStrategy: waitForAllStrategy(() => generating.count)},
      ...(config.flashAttention === "auto" ? {} : {flashAttention: config.flashAttention === "on"})
    });
    const flashAttention = context.flashAttention;
    const sequences = Array.from({length: config.parallelSlots}, () => context.getSequence());
    const pool = new SlotPool(sequences, config.maxQueue, options.poolObserver);
    const chatWrapper =
      config.chatWrapper === "auto"
        ? resolveChatWrapper(model)
        : resolveChatWrapper(model, {type: config.chatWrapper as "auto"});
    log?.(
      "info",
      `model loaded: gpu=${String(llama.gpu)} layers=${model.gpuLayers}/${model.fileInsights.totalLayers} ` +
        `slots=${config.parallelSlots} contextSize=${context.contextSize} threads=${config.threads} flashAttention=${flashAttention} chatWrapper=${chatWrapper.wrapperName}`
    );
    const promptCache =
      config.promptCache.budgetBytes > 0
        ? await PromptCache.open({...config.promptCache, observer: options.promptCacheObserver, log: (message) => log?.("warn", message)})
        : undefined;
    return new LlamaEngine(config.modelName, llama, model, context, pool, chatWrapper, options.tokenObserver, config.threads, generating, promptCache);
  }

  get slots() {
    return this.pool;
  }

  /** The GPU backend in use, or `false` for CPU. */
  get gpu(): string | false {
    return this.llama.gpu;
  }

  /** Layers offloaded to the GPU, and the model's total. */
  get gpuLayers(): {offloaded: number; total: number} {
    return {offloaded: this.model.gpuLayers, total: this.model.fileInsights.totalLayers};
  }

  async generate(request: InferenceRequest, options: GenerateOptions): Promise<GenerationResult> {
    const {tokens, evaluated, promptTokens, stopTriggers, history} = this.render(request.prompt, request.tools);
    // A forced tool call is JSON constrained to its schema, like a json_schema response.
    const format: ResponseFormat = forcedCall(request.tools) ? {kind: "json_schema", name: "tool_call", schema: toolCallSchema(request.tools), strict: true} : request.format;
    const contextSize = this.context.contextSize;
    // At least one token must fit after the prompt; llama.cpp would otherwise silently drop its start.
    if (promptTokens >= contextSize) throw contextLengthExceeded(contextSize, promptTokens, request.prompt.kind === "chat" ? "messages" : "prompt");

    // Compiled before a slot is taken: a schema the grammar refuses is the client's 400.
    const grammar = await this.grammarFor(format)?.catch((e: unknown) => {
      throw invalidRequest(`Invalid schema for response_format: ${e instanceof Error ? e.message : String(e)}`, "response_format.json_schema.schema", "invalid_json_schema");
    });
    const tokenBias = this.tokenBias(request.params.logitBias);
    const queuedAt = performance.now();
    // Among free slots, the one whose KV cache saves the most of this prompt (see chooseSlot).
    // (`contextTokens` copies the slot's tokens on every read: read once per slot.)
    const sequence = await this.pool.acquire(options.signal, (free) =>
      chooseSlot(
        free.map((s) => {
          const held = s.contextTokens;
          return {shared: commonPrefix(held, evaluated), held: held.length};
        })
      )
    );
    const slotAt = performance.now();
    // Usage counts every sampled token, whatever text it yields: the sequence's meter counts
    // each position whose logits were computed, i.e. each sample. LlamaCompletion's onToken
    // misses tokens it holds back (a trailing incomplete UTF-8 sequence at max_tokens).
    const sampledBefore = sequence.tokenMeter.usedOutputTokens;
    // The prompt tokens node-llama-cpp evaluates count as input, except the last (an output).
    const inputBefore = sequence.tokenMeter.usedInputTokens;
    let streamedTokens = 0;
    const generated: Token[] = [];
    let lastTokenAt = slotAt;
    let text = "";
    const stops = new StopDetector(request.params.stop);
    // Stop strings are matched here, on text, and end generation through this signal.
    const stopSignal = new AbortController();
    // JSON mode: whatever ends generation (max_tokens, a stop string), the text parses.
    const json = request.format.kind === "json_object" || forcedCall(request.tools) ? new JsonCloser() : undefined;
    const emit = (piece: string) => {
      if (piece !== "") {
        json?.push(piece);
        options.onText?.(piece);
      }
      return piece;
    };
    try {
      // A state saved earlier may hold more of this prompt than any free slot did.
      await this.promptCache?.prepare(sequence, evaluated, options.tenant ?? OPEN_TENANT);
      options.onStart?.();
      const {params} = request;
      // `result.response` is not used: the text is what passed the stop detector, as streamed.
      const penalties = params.presencePenalty !== 0 || params.frequencyPenalty !== 0;
      const sampling = {
        ...(tokenBias ? {tokenBias} : {}),
        signal: AbortSignal.any([options.signal, stopSignal.signal]),
        stopOnAbortSignal: true,
        maxTokens: params.maxTokens ?? contextSize,
        // Stop at the end of the slot's context rather than shifting it: a shifted context
        // silently forgets the start of the prompt, which an API caller cannot see.
        disableContextShift: true,
        temperature: params.temperature,
        topP: params.topP,
        topK: params.topK,
        minP: params.minP,
        ...(params.seed === undefined ? {} : {seed: params.seed}),
        repeatPenalty: penalties
          ? {
              penalty: 1,
              presencePenalty: params.presencePenalty,
              frequencyPenalty: params.frequencyPenalty,
              lastTokens: PENALTY_WINDOW_TOKENS,
              penalizeNewLine: true
            }
          : (false as const),
        onToken: (tokens: Token[]) => {
          const now = performance.now();
          if (streamedTokens > 0) this.tokenObserver?.onInterToken((now - lastTokenAt) / 1000);
          lastTokenAt = now;
          streamedTokens += tokens.length;
          if (request.logprobs) generated.push(...tokens);
        },
        onTextChunk: (chunk: string) => {
          text += emit(stops.push(chunk));
          if (stops.stopped) stopSignal.abort();
        }
      };
      let toolCalls: Array<{name: string; arguments: string}> | undefined;
      let stopReason: string;
      this.generating.count++;
      try {
        if (request.tools?.choice.kind === "auto" && history) {
          // tool_choice auto: node-llama-cpp's LlamaChat renders the tools in the model's own
          // function-calling syntax and parses calls out of what it generates.
          const chat = new LlamaChat({contextSequence: sequence, chatWrapper: this.chatWrapper, autoDisposeSequence: false});
          try {
            const answer = await chat.generateResponse(history, {
              ...sampling,
              functions: functionsOf(request.tools),
              documentFunctionParams: true,
              ...(request.tools.choice.parallel ? {} : {maxParallelFunctionCalls: 1})
            });
            stopReason = answer.metadata.stopReason;
            if (answer.functionCalls?.length) toolCalls = answer.functionCalls.map((c) => ({name: c.functionName, arguments: JSON.stringify(c.params ?? {})}));
          } finally {
            chat.dispose({disposeSequence: false});
          }
        } else {
          const completion = new LlamaCompletion({contextSequence: sequence});
          try {
            const result = await completion.generateCompletionWithMeta(tokens, {...sampling, ...(grammar ? {grammar} : {}), customStopTriggers: stopTriggers});
            stopReason = result.metadata.stopReason;
          } finally {
            completion.dispose({disposeSequence: false});
          }
        }
      } finally {
        this.generating.count--;
      }
      if (!stops.stopped) text += emit(stops.flush());
      if (json && stopReason !== "abort") text += emit(json.closing());
      const stopCause = stops.stopped ? "stop_sequence" : toStopCause(stopReason, options);
      const completionTokens = sequence.tokenMeter.usedOutputTokens - sampledBefore;
      // Each decode counts its tokens as input except the one whose logits are sampled: the
      // prompt's evaluation adds (evaluated - 1), each generated token fed back adds 0.
      const evaluatedPrompt = Math.min(promptTokens, sequence.tokenMeter.usedInputTokens - inputBefore + 1);
      const logprobs = request.logprobs && stopCause !== "aborted" ? await this.scoreTokens(sequence, evaluated, this.visibleTokens(generated, text), request.logprobs.top) : undefined;
      return {
        ...(logprobs ? {logprobs} : {}),
        ...(toolCalls ? {toolCalls} : {}),
        text,
        finishReason: stopCause === "eos" || stopCause === "stop_sequence" ? "stop" : "length",
        stopCause,
        promptTokens,
        cachedTokens: Math.max(0, promptTokens - evaluatedPrompt),
        completionTokens,
        queueMs: slotAt - queuedAt
      };
    } finally {
      this.pool.release(sequence);
    }
  }

  /**
   * Turns a prompt into the tokens to evaluate. Chat messages go through the model's chat
   * template (or node-llama-cpp's best match when the GGUF has none); its end-of-turn
   * markers become stop triggers. `promptTokens` counts the BOS token llama.cpp prepends.
   */
  private render(prompt: Prompt, tools?: Tools): {tokens: Token[]; evaluated: Token[]; promptTokens: number; stopTriggers: LlamaText[]; history?: ChatHistoryItem[]} {
    const bos = this.model.tokens.bos;
    const prependsBos = this.model.tokens.shouldPrependBosToken && bos !== null;
    let tokens: Token[];
    let stopTriggers: LlamaText[] = [];
    let history: ChatHistoryItem[] | undefined;
    if (prompt.kind === "text") {
      tokens = this.model.tokenize(prompt.text);
    } else {
      // Offered tools are documented in the prompt as the model's template does it.
      const availableFunctions = tools ? functionsOf(tools) : undefined;
      history = toChatHistory(prompt.messages);
      const state = this.chatWrapper.generateContextState({chatHistory: history, ...(availableFunctions ? {availableFunctions, documentFunctionParams: true} : {})});
      tokens = state.contextText.tokenize(this.model.tokenizer);
      stopTriggers = state.stopGenerationTriggers;
      // The template already starts with BOS; LlamaCompletion adds its own, so drop the template's.
      if (prependsBos && tokens[0] === bos) tokens = tokens.slice(1);
    }
    // What the sequence will hold: LlamaCompletion's BOS, then the prompt.
    const evaluated = prependsBos ? [bos, ...tokens] : tokens;
    return {tokens, evaluated, promptTokens: evaluated.length, stopTriggers, ...(history ? {history} : {})};
  }

  stopAccepting(): void {
    this.pool.close();
  }

  get embeddingSize(): number {
    return this.model.embeddingVectorSize;
  }

  /**
   * Embeddings from the same model file, in one embedding context beside the generation
   * slots: created on the first request (its KV memory is spent only by servers that embed),
   * one sequence of the server's context size, requests taking turns. So embedding can
   * use at most that one context's compute while the slots keep theirs.
   */
  async embed(inputs: readonly EmbeddingInput[], signal: AbortSignal): Promise<{vectors: number[][]; promptTokens: number}> {
    const tokenized = inputs.map((input, i) => {
      const tokens = typeof input === "string" ? this.model.tokenize(input) : (input as Token[]);
      if (tokens.length > this.contextSizeForEmbedding) {
        throw new ApiError(400, "invalid_request_error", "context_length_exceeded", `This model's maximum context length is ${this.contextSizeForEmbedding} tokens. However, input${inputs.length > 1 ? `[${i}]` : ""} has ${tokens.length} tokens.`, inputs.length > 1 ? `input[${i}]` : "input");
      }
      // An id beyond the vocabulary would make llama.cpp read out of bounds: refuse it here.
      if (typeof input !== "string" && tokens.some((t) => t >= this.vocabularySize)) throw invalidRequest(`input${inputs.length > 1 ? `[${i}]` : ""} holds a token id beyond this model's vocabulary (${this.vocabularySize} tokens)`, "input", "invalid_value");
      return tokens;
    });
    const run = this.#embedding.then(async () => {
      this.#embeddingContext ??= this.model.createEmbeddingContext({contextSize: this.contextSizeForEmbedding, ...(this.threads ? {threads: this.threads} : {})});
      const context = await this.#embeddingContext;
      const vectors: number[][] = [];
      for (const tokens of tokenized) {
        if (signal.aborted) throw signal.reason;
        vectors.push([...(await context.getEmbeddingFor(tokens)).vector]);
      }
      return {vectors, promptTokens: tokenized.reduce((a, t) => a + t.length, 0)};
    });
    this.#embedding = run.then(() => undefined, () => undefined);
    return run;
  }

  #embedding: Promise<void> = Promise.resolve();
  #embeddingContext: Promise<LlamaEmbeddingContext> | undefined;

  /** The generated tokens whose text starts inside the output (a stop string's tokens are cut with it). */
  private visibleTokens(generated: readonly Token[], text: string): Token[] {
    let offset = 0;
    let i = 0;
    for (; i < generated.length && offset < text.length; i++) offset += this.model.detokenize([generated[i]!], false, generated.slice(Math.max(0, i - 8), i)).length;
    return generated.slice(0, i);
  }

  /**
   * Log probabilities of the output tokens under the model itself (temperature 1, no
   * truncation), whatever sampler chose them: the KV of the reply is evaluated once more,
   * teacher-forced in one batch (the cost of processing that many prompt tokens), and
   * ends as it was, so the slot's prefix cache is unchanged.
   */
  private async scoreTokens(sequence: LlamaContextSequence, evaluated: readonly Token[], tokens: readonly Token[], top: number): Promise<TokenLogprob[]> {
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
      const text = this.model.detokenize([t], false, before);
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

  /** OpenAI's logit_bias: added to the token's logit; -100 bans it (unless a grammar needs it). */
  private tokenBias(bias: ReadonlyArray<readonly [number, number]>): TokenBias | undefined {
    if (bias.length === 0) return undefined;
    const out = new TokenBias(this.model.tokenizer);
    for (const [token, value] of bias) {
      if (token >= this.vocabularySize) throw invalidRequest(`Invalid value for 'logit_bias': token ${token} is beyond this model's vocabulary (${this.vocabularySize} tokens).`, "logit_bias", "invalid_value");
      out.set(token as Token, value <= -100 ? "never" : {logit: value});
    }
    return out;
  }

  /** Tokens in the model's vocabulary, from the GGUF's tokenizer list; read once (checks run per token). */
  private get vocabularySize(): number {
    if (this.#vocabularySize === undefined) {
      const tokens = (this.model.fileInfo.metadata as {tokenizer?: {ggml?: {tokens?: unknown}}}).tokenizer?.ggml?.tokens;
      this.#vocabularySize = Array.isArray(tokens) ? tokens.length : 0;
    }
    return this.#vocabularySize;
  }

  #vocabularySize: number | undefined;

  private get contextSizeForEmbedding(): number {
    return Math.min(this.context.contextSize, this.model.trainContextSize);
  }

  /** Grammars are compiled once per format and kept (a bounded number of schemas). */
  readonly #grammars = new Map<string, Promise<LlamaGrammar>>();

  private grammarFor(format: ResponseFormat): Promise<LlamaGrammar> | undefined {
    if (format.kind === "text") return undefined;
    const key = format.kind === "json_object" ? "json" : JSON.stringify(format.schema);
    let grammar = this.#grammars.get(key);
    if (!grammar) {
      grammar = format.kind === "json_object" ? this.llama.getGrammarFor("json") : this.llama.createGrammarForJsonSchema(format.schema as never);
      if (this.#grammars.size >= MAX_GRAMMARS) this.#grammars.delete(this.#grammars.keys().next().value!);
      this.#grammars.set(key, grammar);
      grammar.catch(() => this.#grammars.delete(key));
    }
    return grammar;
  }

  /**
   * Bytes held for this model. VRAM is what the GPU driver reports as used; RAM is the
   * share of the weights kept on the CPU plus, without a GPU, the context's KV state.
   */
  async memory(): Promise<{ram: number; vram: number}> {
    const vram = this.llama.gpu === false ? 0 : (await this.llama.getVramState()).used;
    const totalLayers = Math.max(1, this.model.fileInsights.totalLayers);
    const cpuShare = 1 - Math.min(this.model.gpuLayers, totalLayers) / totalLayers;
    const ram = Math.round(this.model.size * cpuShare) + (this.llama.gpu === false ? this.context.stateSize : 0);
    return {ram, vram};
  }

  async close(): Promise<void> {
    await this.promptCache?.close().catch(() => undefined);
    await (await this.#embeddingContext?.catch(() => undefined))?.dispose();
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

/** The tools as node-llama-cpp's chat wrappers document and parse them. */
function functionsOf(tools: Tools): ChatModelFunctions {
  return Object.fromEntries(tools.functions.map((f) => [f.name, {...(f.description ? {description: f.description} : {}), params: f.parameters as never}]));
}

function toStopCause(reason: string, options: GenerateOptions): StopCause {
  switch (reason) {
    case "eogToken":
    case "functionCalls":
      return "eos";
    case "stopGenerationTrigger":
    case "customStopTrigger":
      return "stop_sequence";
    case "abort":
      return options.timedOut?.() ? "timeout" : "aborted";
    default:
      return "max_tokens";
  }
}
