import {readFileSync} from "node:fs";
import {basename} from "node:path";
import {z} from "zod";
import {DEFAULT_PORT, ENV} from "../../contract/index.js";
import type {LogLevel} from "../../contract/log.js";
import type {CacheConfig} from "./cache/create-cache.js";
import {cpuBudget, defaultThreads, readCpuBudgetSources, type CpuBudgetSources} from "./engine/cpu-budget.js";
import type {PromptCacheConfig} from "./engine/prompt-cache.js";
import {parseKeysFile} from "./http/api-keys.js";

/** Thrown when the environment cannot configure a server; the message names the variable. */
export class ConfigError extends Error {
  readonly code = "invalid_config";
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const positiveInt = (max: number) => z.coerce.number().int().min(1).max(max);
const boolFlag = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");

/**
 * The server's environment, one entry per variable. Each default is the documented one;
 * the README's table is the user-facing copy of this schema.
 */
const envSchema = z.object({
  [ENV.modelPath]: z.string({error: "is required: the path of a .gguf model file"}).min(1),
  [ENV.modelName]: z.string().min(1).max(256).optional(),
  [ENV.host]: z.string().min(1).default("0.0.0.0"),
  [ENV.port]: z.coerce.number().int().min(0).max(65_535).default(DEFAULT_PORT),
  [ENV.parallelSlots]: positiveInt(256).default(4),
  [ENV.contextSize]: positiveInt(1_048_576).default(2048),
  [ENV.maxQueue]: z.coerce.number().int().min(0).max(100_000).default(64),
  [ENV.gpu]: z.enum(["auto", "cuda", "vulkan", "off"]).default("auto"),
  [ENV.gpuRequired]: boolFlag.default(false),
  [ENV.flashAttention]: z.enum(["auto", "on", "off"]).default("auto"),
  [ENV.modelMmap]: z.enum(["auto", "on", "off"]).default("auto"),
  [ENV.gpuLayers]: z.union([z.literal("auto"), z.literal("max"), z.coerce.number().int().min(0)]).default("auto"),
  [ENV.threads]: positiveInt(1024).optional(),
  [ENV.requestTimeoutSeconds]: z.coerce.number().positive().max(86_400).default(600),
  [ENV.shutdownGraceSeconds]: z.coerce.number().min(0).max(3600).default(30),
  [ENV.apiKeysFile]: z.string().min(1).optional(),
  [ENV.maxRequestBytes]: positiveInt(64 * 1024 * 1024).default(1024 * 1024),
  [ENV.logLevel]: z.enum(["debug", "info", "warn", "error"]).default("info"),
  [ENV.logPrompts]: boolFlag.default(false),
  [ENV.chatWrapper]: z.string().min(1).default("auto"),
  [ENV.modelSha256]: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits").transform((s) => s.toLowerCase()).optional(),
  [ENV.redisUrl]: z.string().regex(/^rediss?:\/\/\S+$/, "must be a redis:// or rediss:// URL").optional(),
  [ENV.cacheMode]: z.enum(["deterministic", "all", "off"]).default("deterministic"),
  [ENV.cacheTtlSeconds]: positiveInt(365 * 86_400).default(3600),
  [ENV.cacheMaxBytes]: z.coerce.number().int().min(0).default(64 * 1024 * 1024),
  [ENV.cacheNamespace]: z.string().regex(/^[a-zA-Z0-9._-]{1,128}$/, "must be 1-128 letters, digits, '.', '_' or '-'").default("default"),
  [ENV.cacheRedisTimeoutMs]: positiveInt(10_000).default(50),
  [ENV.promptCacheDir]: z.string().min(1).optional(),
  [ENV.promptCacheBytes]: z.coerce.number().int().min(0).default(1024 * 1024 * 1024),
  [ENV.promptCacheMinTokens]: positiveInt(1_048_576).default(128)
});

export type GpuMode = "auto" | "cuda" | "vulkan" | "off";

/** Validated, frozen server configuration. Durations are in milliseconds. */
export interface ServerConfig {
  readonly modelPath: string;
  /** Id served by `/v1/models` and accepted in `model`. Defaults to the file name without `.gguf`. */
  readonly modelName: string;
  readonly host: string;
  readonly port: number;
  /** Sequences generated concurrently in one context. Defaults to 4. */
  readonly parallelSlots: number;
  /** Tokens per slot. Defaults to 2048. */
  readonly contextSize: number;
  /** Requests allowed to wait for a slot before 429. Defaults to 64. */
  readonly maxQueue: number;
  readonly gpu: GpuMode;
  /** Refuse to serve from the CPU: exit if no GPU backend loads or no layer is offloaded. Defaults to false. */
  readonly gpuRequired: boolean;
  /**
   * Flash attention: `auto` keeps node-llama-cpp's default (on). On the CPU, off makes
   * prompts slower (tiny model, head dim 8: 2.5x; 64-dim heads: 16-19%) and only the tiny
   * model's decoding faster. Defaults to auto.
   */
  readonly flashAttention: "auto" | "on" | "off";
  /**
   * Whether the model file is memory-mapped. `auto`: on a CPU, read into the process's own
   * memory, which Paddock's llama.cpp build puts in transparent huge pages (110M f16 decodes
   * 1.37x faster in-process; through the server the 110M models serve 6-18% more requests at
   * c = 1); with a GPU, node-llama-cpp's choice.
   * `on` maps it (the page cache holds it, shared and reclaimable). Defaults to auto.
   */
  readonly modelMmap: "auto" | "on" | "off";
  readonly gpuLayers: number | "auto" | "max";
  /** llama.cpp threads. Defaults to the CPU budget (cgroup quota / affinity) minus one core. */
  readonly threads: number;
  /** CPU budget the default thread count was derived from, in cores (logged at start). */
  readonly cpuBudgetCores: number;
  /** Upper bound on one request, queueing included. Defaults to 600_000 (ms). */
  readonly requestTimeoutMs: number;
  /** Drain deadline after SIGTERM. Defaults to 30_000 (ms). */
  readonly shutdownGraceMs: number;
  readonly apiKeysFile: string | undefined;
  /** Largest accepted request body. Defaults to 1 MiB. */
  readonly maxRequestBytes: number;
  readonly logLevel: LogLevel;
  /** Whether request logs include prompt text. Defaults to false. */
  readonly logPrompts: boolean;
  /** node-llama-cpp chat wrapper name, or "auto" to use the model's own template. */
  readonly chatWrapper: string;
  /** The model file's sha256 when the operator knows it; otherwise computed at start. */
  readonly modelSha256: string | undefined;
  readonly cache: CacheConfig;
  readonly promptCache: PromptCacheConfig;
}

/**
 * Parses the server's environment once at start-up. A bad value throws a ConfigError
 * naming the variable, so the process stops before loading anything. Files a variable
 * names (API_KEYS_FILE) are checked here too: read with `readText`.
 */
export function loadServerConfig(
  env: NodeJS.ProcessEnv,
  cpuSources: CpuBudgetSources = readCpuBudgetSources(),
  readText: (path: string) => string = (path) => readFileSync(path, "utf8")
): Readonly<ServerConfig> {
  const result = envSchema.safeParse(stripEmpty(env));
  if (!result.success) throw new ConfigError(describeIssues(result.error));
  const e = result.data;
  if (e[ENV.gpuRequired] && e[ENV.gpu] === "off") throw new ConfigError(`${ENV.gpuRequired}: cannot be true with ${ENV.gpu}=off`);
  const keysFile = e[ENV.apiKeysFile];
  if (keysFile !== undefined) checkKeysFile(keysFile, readText);
  const budget = cpuBudget(cpuSources);
  const modelPath = e[ENV.modelPath];
  return Object.freeze({
    modelPath,
    modelName: e[ENV.modelName] ?? basename(modelPath).replace(/\.gguf$/i, ""),
    host: e[ENV.host],
    port: e[ENV.port],
    parallelSlots: e[ENV.parallelSlots],
    contextSize: e[ENV.contextSize],
    maxQueue: e[ENV.maxQueue],
    gpu: e[ENV.gpu],
    gpuRequired: e[ENV.gpuRequired],
    flashAttention: e[ENV.flashAttention],
    modelMmap: e[ENV.modelMmap],
    gpuLayers: e[ENV.gpuLayers],
    threads: e[ENV.threads] ?? defaultThreads(budget),
    cpuBudgetCores: budget,
    requestTimeoutMs: e[ENV.requestTimeoutSeconds] * 1000,
    shutdownGraceMs: e[ENV.shutdownGraceSeconds] * 1000,
    apiKeysFile: e[ENV.apiKeysFile],
    maxRequestBytes: e[ENV.maxRequestBytes],
    logLevel: e[ENV.logLevel],
    logPrompts: e[ENV.logPrompts],
    chatWrapper: e[ENV.chatWrapper],
    modelSha256: e[ENV.modelSha256],
    cache: Object.freeze({
      mode: e[ENV.cacheMode],
      redisUrl: e[ENV.redisUrl],
      ttlSeconds: e[ENV.cacheTtlSeconds],
      maxBytes: e[ENV.cacheMaxBytes],
      namespace: e[ENV.cacheNamespace],
      redisTimeoutMs: e[ENV.cacheRedisTimeoutMs]
    }),
    promptCache: Object.freeze({
      dir: e[ENV.promptCacheDir],
      budgetBytes: e[ENV.promptCacheBytes],
      minTokens: e[ENV.promptCacheMinTokens]
    })
  });
}

/** The keys file must be readable and hold a key: serving without the auth asked for is worse than not starting. */
function checkKeysFile(path: string, readText: (path: string) => string): void {
  let text: string;
  try {
    text = readText(path);
  } catch (error) {
    throw new ConfigError(`${ENV.apiKeysFile}: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (parseKeysFile(text).length === 0) throw new ConfigError(`${ENV.apiKeysFile}: ${path} holds no keys (one per line; '#' starts a comment); unset the variable to run without auth`);
}

/** An empty variable (`FOO=`) means "unset", as in most servers; it should not fail coercion. */
export function stripEmpty(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}

/** Formats zod issues as "VAR: problem (got "value")" lines, one per variable. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.join(".") || "environment"}: ${issue.message}`)
    .join("; ");
}
