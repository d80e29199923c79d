import {LlamaChat, LlamaCompletion, type ChatWrapper, type LlamaContextSequence, type LlamaGrammar, type LlamaModel, type Token, type TokenBias} from "node-llama-cpp";
import {contextLengthExceeded, invalidRequest} from "../core/errors.js";
import type {GenerateOptions, GenerationResult, ModelToolCall, StopCause} from "../core/generation.js";
import type {TokenObserver} from "../core/observers.js";
import type {InferenceRequest, ResponseFormat} from "../core/request.js";
import {OPEN_TENANT} from "../core/tenant.js";
import {JsonCloser} from "../openai/json-closer.js";
import {StopDetector} from "../openai/stop-detector.js";
import {forcedCall, toolCallSchema} from "../openai/tool-calls.js";
import type {GrammarCache} from "./grammars.js";
import {LiveLogprobs} from "./live-logprobs.js";
import type {PromptCache} from "./prompt-cache.js";
import {functionsOf, renderPrompt, type RenderedPrompt} from "./prompt.js";
import {scoreTokens, visibleTokens} from "./scoring.js";
import {chooseSlot, commonPrefix, type SlotPool} from "./slot-pool.js";
import {tokenBias} from "./vocabulary.js";

/** Tokens kept for OpenAI-style presence/frequency penalties (llama.cpp's window). */
const PENALTY_WINDOW_TOKENS = 256;

/** What a generation needs of the engine: the model, its slots and what they share. */
export interface Generator {
  readonly model: LlamaModel;
  readonly contextSize: number;
  readonly pool: SlotPool<LlamaContextSequence>;
  readonly chatWrapper: ChatWrapper;
  readonly grammars: GrammarCache;
  readonly vocabulary: number;
  readonly tokenObserver: TokenObserver | undefined;
  /** Sequences between the start and the end of their generation (the batch strategy waits for them). */
  readonly generating: {count: number};
  readonly promptCache: PromptCache | undefined;
  /**
   * Who filled each slot (the tenant of its last request). A slot's KV is reused only for
   * its own tenant: another tenant's prompt neither prefers it nor keeps its prefix, so
   * `cached_tokens` and time to first token cannot tell one tenant what another sent.
   * Without API keys every caller is OPEN_TENANT and slots are shared as before.
   */
  readonly owners: WeakMap<LlamaContextSequence, string>;
}

/** What is decided before a slot is taken; a bad request fails here, holding nothing. */
interface Plan {
  readonly prompt: RenderedPrompt;
  readonly grammar: LlamaGrammar | undefined;
  readonly bias: TokenBias | undefined;
}

/**
 * One request's generation: plan it, take a slot (the free one whose KV cache saves the
 * most, see chooseSlot), restore a saved prompt state if one holds more of it, decode,
 * and report what happened.
 */
export async function generate(g: Generator, request: InferenceRequest, options: GenerateOptions): Promise<GenerationResult> {
  const plan = await planOf(g, request);
  const tenant = options.tenant ?? OPEN_TENANT;
  const queuedAt = performance.now();
  const sequence = await acquireSlot(g, plan.prompt.evaluated, options.signal, tenant);
  const slotAt = performance.now();
  try {
    const owner = g.owners.get(sequence);
    g.owners.set(sequence, tenant);
    const restored = (await g.promptCache?.prepare(sequence, plan.prompt.evaluated, tenant, owner)) ?? false;
    // Another tenant's KV is never this prompt's prefix: start the slot over.
    if (owner !== undefined && owner !== tenant && !restored) await sequence.clearHistory();
    options.onStart?.();
    const run = new GenerationRun(g, sequence, request, plan, options, slotAt);
    return {...(await run.run()), queueMs: slotAt - queuedAt};
  } finally {
    g.pool.release(sequence);
  }
}

async function planOf(g: Generator, request: InferenceRequest): Promise<Plan> {
  const prompt = renderPrompt(g.model, g.chatWrapper, request.prompt, g.vocabulary, request.tools);
  // At least one token must fit after the prompt; llama.cpp would otherwise silently drop its start.
  if (prompt.promptTokens >= g.contextSize) throw contextLengthExceeded(g.contextSize, prompt.promptTokens, request.prompt.kind === "chat" ? "messages" : "prompt");
  // A forced tool call is JSON constrained to its schema, like a json_schema response.
  const format: ResponseFormat = forcedCall(request.tools) ? {kind: "json_schema", name: "tool_call", schema: toolCallSchema(request.tools), strict: true} : request.format;
  // Compiled before a slot is taken: a schema the grammar refuses is the client's 400.
  const grammar = await g.grammars.grammarFor(format)?.catch((e: unknown) => {
    throw invalidRequest(`Invalid schema for response_format: ${e instanceof Error ? e.message : String(e)}`, "response_format.json_schema.schema", "invalid_json_schema");
  });
  return {prompt, grammar, bias: tokenBias(g.model, g.vocabulary, request.params.logitBias)};
}

/** Among free slots, the one whose KV cache saves the most of this prompt for this tenant (see chooseSlot). */
function acquireSlot(g: Generator, evaluated: readonly Token[], signal: AbortSignal, tenant: string): Promise<LlamaContextSequence> {
  // `contextTokens` copies the slot's tokens on every read: read once per slot.
  return g.pool.acquire(signal, (free) =>
    chooseSlot(
      free.map((s) => {
        const held = s.contextTokens;
        const own = (g.owners.get(s) ?? tenant) === tenant;
        return {shared: own ? commonPrefix(held, evaluated) : 0, held: held.length};
      })
    )
  );
}

/** The decoding of one request on a slot it holds, and the bookkeeping around it. */
class GenerationRun {
  // Usage counts every sampled token, whatever text it yields: the sequence's meter counts
  // each position whose logits were computed, i.e. each sample. LlamaCompletion's onToken
  // misses tokens it holds back (a trailing incomplete UTF-8 sequence at max_tokens).
  readonly #sampledBefore: number;
  // The prompt tokens node-llama-cpp evaluates count as input, except the last (an output).
  readonly #inputBefore: number;
  readonly #generated: Token[] = [];
  readonly #stops: StopDetector;
  // Stop strings are matched here, on text, and end generation through this signal.
  readonly #stopSignal = new AbortController();
  // JSON mode: whatever ends generation (max_tokens, a stop string), the text parses.
  readonly #json: JsonCloser | undefined;
  #streamedTokens = 0;
  #lastTokenAt: number;
  #text = "";
  /** The tokens of the text chunk node-llama-cpp is about to hand over (it calls onToken first). */
  #chunkTokens: Token[] = [];
  #sawChunk = false;
  /** Set by #complete when the reply continues the prompt's text (LlamaChat decodes its own). */
  #continuesPrompt = false;
  /** logprobs from the sampler, chunk by chunk (#complete; LlamaChat forces tokens of its own). */
  #live: LiveLogprobs | undefined;

  constructor(
    private readonly g: Generator,
    private readonly sequence: LlamaContextSequence,
    private readonly request: InferenceRequest,
    private readonly plan: Plan,
    private readonly options: GenerateOptions,
    slotAt: number
  ) {
    this.#sampledBefore = sequence.tokenMeter.usedOutputTokens;
    this.#inputBefore = sequence.tokenMeter.usedInputTokens;
    this.#lastTokenAt = slotAt;
    this.#stops = new StopDetector(request.params.stop);
    this.#json = request.format.kind === "json_object" || forcedCall(request.tools) ? new JsonCloser() : undefined;
  }

  async run(): Promise<Omit<GenerationResult, "queueMs">> {
    let outcome: {stopReason: string; toolCalls?: ModelToolCall[]};
    this.g.generating.count++;
    try {
      outcome = this.request.tools?.choice.kind === "auto" && this.plan.prompt.history ? await this.#chat() : await this.#complete();
    } finally {
      this.g.generating.count--;
    }
    return this.#result(outcome.stopReason, outcome.toolCalls);
  }

  /** A plain completion of the rendered prompt, grammar-constrained when the format asks. */
  async #complete(): Promise<{stopReason: string}> {
    const completion = new LlamaCompletion({contextSequence: this.sequence});
    this.#continuesPrompt = this.plan.prompt.continues;
    const {logprobs} = this.request;
    if (logprobs) this.#live = new LiveLogprobs(this.g.model, this.sequence, this.#textBefore, logprobs.top);
    try {
      const {grammar} = this.plan;
      const result = await completion.generateCompletionWithMeta(this.plan.prompt.tokens, {...this.#sampling(), ...(grammar ? {grammar} : {}), customStopTriggers: this.plan.prompt.stopTriggers});
      return {stopReason: result.metadata.stopReason};
    } finally {
      this.#live?.detach();
      completion.dispose({disposeSequence: false});
    }
  }

  /**
   * tool_choice auto: node-llama-cpp's LlamaChat renders the tools in the model's own
   * function-calling syntax and parses calls out of what it generates.
   */
  async #chat(): Promise<{stopReason: string; toolCalls?: ModelToolCall[]}> {
    const tools = this.request.tools!;
    const chat = new LlamaChat({contextSequence: this.sequence, chatWrapper: this.g.chatWrapper, autoDisposeSequence: false});
    try {
      const answer = await chat.generateResponse(this.plan.prompt.history!, {
        ...this.#sampling(),
        functions: functionsOf(tools),
        documentFunctionParams: true,
        ...(tools.choice.kind === "auto" && tools.choice.parallel ? {} : {maxParallelFunctionCalls: 1})
      });
      const calls = answer.functionCalls?.map((c) => ({name: c.functionName, arguments: JSON.stringify(c.params ?? {})}));
      return {stopReason: answer.metadata.stopReason, ...(calls?.length ? {toolCalls: calls} : {})};
    } finally {
      chat.dispose({disposeSequence: false});
    }
  }

  /** node-llama-cpp's sampling options for the request's parameters, with the hooks that stream and stop. */
  #sampling() {
    const {params} = this.request;
    const penalties = params.presencePenalty !== 0 || params.frequencyPenalty !== 0;
    return {
      ...(this.plan.bias ? {tokenBias: this.plan.bias} : {}),
      signal: AbortSignal.any([this.options.signal, this.#stopSignal.signal]),
      stopOnAbortSignal: true,
      maxTokens: params.maxTokens ?? this.g.contextSize,
      // Stop at the end of the slot's context rather than shifting it: a shifted context
      // silently forgets the start of the prompt, which an API caller cannot see.
      disableContextShift: true,
      temperature: params.temperature,
      topP: params.topP,
      topK: params.topK,
      minP: params.minP,
      ...(params.seed === undefined ? {} : {seed: params.seed}),
      repeatPenalty: penalties
        ? {penalty: 1, presencePenalty: params.presencePenalty, frequencyPenalty: params.frequencyPenalty, lastTokens: PENALTY_WINDOW_TOKENS, penalizeNewLine: true}
        : (false as const),
      onToken: (tokens: Token[]) => this.#onToken(tokens),
      // `result.response` is not used: the text is what passed the stop detector, as streamed.
      onTextChunk: (chunk: string) => {
        // LlamaCompletion decodes its first chunk alone, as the start of a text; a reply
        // that continues the prompt keeps the leading space that drops (prompt.ts).
        if (!this.#sawChunk && this.#continuesPrompt) chunk = this.g.model.detokenize(this.#chunkTokens, false, this.plan.prompt.evaluated.slice(-8));
        this.#sawChunk = true;
        this.#text += this.#emit(this.#stops.push(chunk));
        if (this.#stops.stopped) this.#stopSignal.abort();
      }
    };
  }

  #onToken(tokens: Token[]): void {
    const now = performance.now();
    if (this.#streamedTokens > 0) this.g.tokenObserver?.onInterToken((now - this.#lastTokenAt) / 1000);
    this.#lastTokenAt = now;
    this.#streamedTokens += tokens.length;
    this.#chunkTokens = tokens;
    if (this.request.logprobs) this.#generated.push(...tokens);
    this.#live?.onTokens(tokens);
  }

  /** The prompt tokens the reply's text reads after: those it continues, none when it opens a turn. */
  get #textBefore(): readonly Token[] {
    return this.#continuesPrompt ? this.plan.prompt.evaluated : [];
  }

  /** Hands a piece of output on, with the logprobs of the tokens whose text starts in it (none for JSON mode's closing). */
  #emit(piece: string, generated = true): string {
    if (piece !== "") {
      this.#json?.push(piece);
      const logprobs = generated ? this.#live?.release(this.#text.length + piece.length) : undefined;
      this.options.onText?.(piece, logprobs);
    }
    return piece;
  }

  async #result(stopReason: string, toolCalls: ModelToolCall[] | undefined): Promise<Omit<GenerationResult, "queueMs">> {
    if (!this.#stops.stopped) this.#text += this.#emit(this.#stops.flush());
    // JSON mode's body parses however generation ended, a stop string included (that aborts
    // too, but by our own hand); only a client that left or a deadline gets no closing.
    if (this.#json && (this.#stops.stopped || stopReason !== "abort")) this.#text += this.#emit(this.#json.closing(), false);
    const stopCause = this.#stops.stopped ? "stop_sequence" : toStopCause(stopReason, this.options);
    const {sequence, plan} = this;
    const promptTokens = plan.prompt.promptTokens;
    // Each decode counts its tokens as input except the one whose logits are sampled: the
    // prompt's evaluation adds (evaluated - 1), each generated token fed back adds 0.
    const evaluatedPrompt = Math.min(promptTokens, sequence.tokenMeter.usedInputTokens - this.#inputBefore + 1);
    // Read before scoring, which evaluates the reply again on this sequence.
    const completionTokens = sequence.tokenMeter.usedOutputTokens - this.#sampledBefore;
    const {logprobs: wanted} = this.request;
    const live = this.#live?.available ? this.#live.released : undefined;
    // Without the sampler's numbers (an unpatched build, tools), the reply is scored once more.
    const textBefore = this.#textBefore;
    const logprobs = !wanted || stopCause === "aborted" ? undefined : (live ?? (await scoreTokens(this.g.model, sequence, plan.prompt.evaluated, visibleTokens(this.g.model, this.#generated, this.#text, textBefore), wanted.top, textBefore)));
    return {
      ...(logprobs ? {logprobs} : {}),
      ...(toolCalls ? {toolCalls} : {}),
      text: this.#text,
      finishReason: stopCause === "eos" || stopCause === "stop_sequence" ? "stop" : "length",
      stopCause,
      promptTokens,
      cachedTokens: Math.max(0, promptTokens - evaluatedPrompt),
      completionTokens
    };
  }
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
