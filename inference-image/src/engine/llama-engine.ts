import {getLlama, getLlamaGpuTypes, LlamaLogLevel, resolveChatWrapper, type ChatWrapper, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel} from "node-llama-cpp";
import type {EmbeddingInput, Engine, GenerateOptions, GenerationResult} from "../core/generation.js";
import type {PromptCacheObserver, SlotPoolObserver, TokenObserver} from "../core/observers.js";
import type {InferenceRequest} from "../core/request.js";
import cpuBuild from "../../llama-cpu-build.json" with {type: "json"};
import {waitForAllStrategy} from "./batch-strategy.js";
import {Embeddings} from "./embedding.js";
import {generate, type Generator} from "./generation.js";
import {backendProblem, offloadProblem} from "./gpu-requirement.js";
import {GrammarCache} from "./grammars.js";
import {readHugePages, useMmapFor, weightsMessage, type MmapMode} from "./huge-pages.js";
import {samplerReportsLogprobs} from "./live-logprobs.js";
import {PromptCache, type PromptCacheConfig} from "./prompt-cache.js";
import {SlotPool} from "./slot-pool.js";
import {vocabularySize} from "./vocabulary.js";

/** GPU_REQUIRED is set and the model would run on the CPU; the message says what to check. */
export class GpuUnavailableError extends Error {
  override name = "GpuUnavailableError";
}

/** The engine's part of the server configuration (config.ts documents each default). */
export interface EngineSettings {
  readonly modelPath: string;
  readonly modelName: string;
  readonly parallelSlots: number;
  readonly contextSize: number;
  readonly maxQueue: number;
  readonly gpu: "auto" | "cuda" | "vulkan" | "off";
  readonly gpuRequired: boolean;
  readonly gpuLayers: number | "auto" | "max";
  readonly threads: number;
  readonly chatWrapper: string;
  readonly flashAttention: "auto" | "on" | "off";
  readonly modelMmap: MmapMode;
  readonly promptCache: PromptCacheConfig;
}

export interface LlamaEngineOptions {
  readonly config: EngineSettings;
  readonly poolObserver?: SlotPoolObserver;
  readonly tokenObserver?: TokenObserver;
  readonly promptCacheObserver?: PromptCacheObserver;
  readonly log?: (level: "info" | "warn" | "error", message: string) => void;
}

/**
 * The model and one context whose sequences are the parallel slots: the one owner of
 * node-llama-cpp's objects. node-llama-cpp batches every active sequence of a context into
 * one decode call, so N slots really run together. Generation (generation.ts), scoring,
 * embeddings, slots and the prompt cache are each their own module; this facade loads,
 * wires and frees them.
 */
export class LlamaEngine implements Engine {
  readonly #generator: Generator;

  private constructor(
    readonly modelName: string,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly pool: SlotPool<LlamaContextSequence>,
    chatWrapper: ChatWrapper,
    tokenObserver: TokenObserver | undefined,
    generating: {count: number},
    private readonly promptCache: PromptCache | undefined,
    private readonly embeddings: Embeddings
  ) {
    this.#generator = {model, contextSize: context.contextSize, pool, chatWrapper, grammars: new GrammarCache(llama), vocabulary: vocabularySize(model), tokenObserver, generating, promptCache, owners: new WeakMap()};
  }

  static async load(options: LlamaEngineOptions): Promise<LlamaEngine> {
    const {config, log} = options;
    const llama = await loadLlama(config, log);
    const model = await loadModel(llama, config, log);
    // Flash attention: `auto` keeps node-llama-cpp's choice (on). Measured on this CPU for a
    // 1,136-token prompt, off is 2.5x slower for the tiny model (head dim 8) and 16-19% slower
    // for 64-dim heads (docs/inference-server.md).
    const generating = {count: 0};
    const context = await model.createContext({
      sequences: config.parallelSlots,
      contextSize: config.contextSize,
      threads: config.threads,
      // A decode carries every generating sequence's token (see batch-strategy.ts).
      batching: {itemPrioritizationStrategy: waitForAllStrategy(() => generating.count)},
      ...(config.flashAttention === "auto" ? {} : {flashAttention: config.flashAttention === "on"})
    });
    const sequences = Array.from({length: config.parallelSlots}, () => context.getSequence());
    const pool = new SlotPool(sequences, config.maxQueue, options.poolObserver);
    const chatWrapper = config.chatWrapper === "auto" ? resolveChatWrapper(model) : resolveChatWrapper(model, {type: config.chatWrapper as "auto"});
    log?.(
      "info",
      `model loaded: gpu=${String(llama.gpu)} layers=${model.gpuLayers}/${model.fileInsights.totalLayers} ` +
        `slots=${config.parallelSlots} contextSize=${context.contextSize} threads=${config.threads} flashAttention=${context.flashAttention} chatWrapper=${chatWrapper.wrapperName}`
    );
    if (await samplerReportsLogprobs(model, sequences[0]!)) log?.("info", "logprobs: from the sampler, chunk by chunk (Paddock's node-llama-cpp patch is compiled in)");
    else log?.("warn", "logprobs: scored once each reply is complete, and streamed on its last chunk: this llama.cpp binary lacks Paddock's patch (node-llama-cpp's prebuilt binaries; see inference-image/patches)");
    const promptCache =
      config.promptCache.budgetBytes > 0
        ? await PromptCache.open({...config.promptCache, bytesPerToken: kvBytesPerToken(model), observer: options.promptCacheObserver, log: (message) => log?.("warn", message)})
        : undefined;
    const embeddings = new Embeddings(model, Math.min(context.contextSize, model.trainContextSize), vocabularySize(model), config.threads, config.maxQueue);
    return new LlamaEngine(config.modelName, llama, model, context, pool, chatWrapper, options.tokenObserver, generating, promptCache, embeddings);
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

  generate(request: InferenceRequest, options: GenerateOptions): Promise<GenerationResult> {
    return generate(this.#generator, request, options);
  }

  stopAccepting(): void {
    this.pool.close();
  }

  get embeddingSize(): number {
    return this.embeddings.size;
  }

  embed(inputs: readonly EmbeddingInput[], signal: AbortSignal): Promise<{vectors: number[][]; promptTokens: number}> {
    return this.embeddings.embed(inputs, signal);
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
    await this.embeddings.close();
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

/**
 * The KV cache's bytes per token of one sequence, from the GGUF's shape: K and V (f16, 2
 * bytes) for every layer's KV heads. What a saved slot state takes per token it holds,
 * give or take its small header. 0 when the metadata does not say (the first save measures it).
 */
export function kvBytesPerToken(model: LlamaModel): number {
  const metadata = model.fileInfo.metadata as Record<string, unknown> & {general?: {architecture?: string}};
  const arch = (metadata[metadata.general?.architecture ?? ""] ?? {}) as {block_count?: number; embedding_length?: number; attention?: {head_count?: number; head_count_kv?: number; key_length?: number; value_length?: number}};
  const heads = arch.attention?.head_count ?? 0;
  const kvHeads = arch.attention?.head_count_kv ?? heads;
  const headDim = heads > 0 ? (arch.embedding_length ?? 0) / heads : 0;
  const perLayer = kvHeads * ((arch.attention?.key_length ?? headDim) + (arch.attention?.value_length ?? headDim)) * 2;
  return Math.round((arch.block_count ?? 0) * perLayer);
}

/** llama.cpp's bindings, refusing a CPU backend when a GPU is required. */
async function loadLlama(config: EngineSettings, log: LlamaEngineOptions["log"]): Promise<Llama> {
  const llama = await getLlama({
    gpu: config.gpu === "off" ? false : config.gpu,
    build: "never",
    // The CPU build made at install time (scripts/build-llama.mjs): node-llama-cpp loads it
    // for these options when it exists, else its prebuilt binaries.
    cmakeOptions: cpuBuild.cmakeOptions,
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
  // Which llama.cpp binaries were loaded, and for a CPU the instruction sets its variant uses
  // (node-llama-cpp picks one of several builds for the machine it runs on).
  log?.("info", `llama.cpp loaded: gpu=${String(llama.gpu)} build=${llama.buildType} release=${llama.llamaCppRelease.release} ${llama.systemInfo.trim()}`);
  if (llama.gpu === false && llama.buildType === "prebuilt") {
    log?.("warn", "running node-llama-cpp's PREBUILT CPU binaries: prompts are about 2x slower than the build inference-image/scripts/build-llama.mjs makes at install time (it found no compiler, or failed: see the install's output)");
  }
  return llama;
}

/** The model file (on a CPU read into huge pages, see huge-pages.ts), refusing one that put no layer on a required GPU. */
async function loadModel(llama: Llama, config: EngineSettings, log: LlamaEngineOptions["log"]): Promise<LlamaModel> {
  const model = await llama.loadModel({modelPath: config.modelPath, gpuLayers: config.gpuLayers, useMmap: useMmapFor(config.modelMmap, llama.gpu)});
  const weights = weightsMessage({mmap: model.useMmap, gpu: llama.gpu, state: readHugePages()});
  log?.(weights.level, weights.text);
  if (!config.gpuRequired) return model;
  const vram = await llama.getVramState();
  const noLayers = offloadProblem({required: true, backend: llama.gpu, offloaded: model.gpuLayers, requested: config.gpuLayers, vramFree: vram.free, vramTotal: vram.total});
  if (noLayers) {
    await model.dispose();
    await llama.dispose();
    throw new GpuUnavailableError(noLayers);
  }
  return model;
}
