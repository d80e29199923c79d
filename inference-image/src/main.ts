import {writeFileSync} from "node:fs";
import type {Server} from "node:http";
import {Registry} from "prom-client";
import {EXIT_CONFIG, EXIT_GPU_UNAVAILABLE} from "../../contract/index.js";
import {createLogger, type Logger} from "../../contract/log.js";
import {createCache} from "./cache/create-cache.js";
import {ConfigError, loadServerConfig, type ServerConfig} from "./config.js";
import {GpuUnavailableError, LlamaEngine} from "./engine/llama-engine.js";
import {ApiKeys} from "./http/api-keys.js";
import {createApp} from "./http/app.js";
import {drainAndClose, type MutableServingState} from "./http/drain.js";
import {ServerMetrics} from "./metrics.js";

/**
 * Entry point of the inference image: read the environment once, start listening (so
 * liveness answers during a long model load), load the model, serve, and drain on SIGTERM.
 */
async function main(): Promise<void> {
  const config = readConfig();
  const logger = createLogger(config.logLevel);
  const metrics = new ServerMetrics(new Registry());
  metrics.slots.set(config.parallelSlots);
  const apiKeys = config.apiKeysFile ? new ApiKeys(config.apiKeysFile) : undefined;
  const state: MutableServingState = {engine: undefined, draining: false};
  const cache = createCache(config.cache, config, metrics, logger);
  const app = createApp({
    modelName: config.modelName,
    metrics,
    logger,
    state,
    apiKeys,
    requestTimeoutMs: config.requestTimeoutMs,
    maxRequestBytes: config.maxRequestBytes,
    logPrompts: config.logPrompts,
    cache,
    modelCreated: Math.floor(Date.now() / 1000)
  });
  const server = await listen(app, config, logger, apiKeys !== undefined);
  stopOnSignals(server, state, config, logger, () => cache?.cache.close());

  const started = performance.now();
  const engine = await loadEngine(config, metrics, logger);
  if (state.draining) {
    await engine.close();
    return;
  }
  state.engine = engine;
  logger.info("ready", {model: config.modelName, gpu: engine.gpu, gpu_layers: engine.gpuLayers, load_ms: Math.round(performance.now() - started)});
}

/** The environment, parsed once; a bad value exits with EXIT_CONFIG naming the variable. */
function readConfig(): Readonly<ServerConfig> {
  try {
    return loadServerConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`paddock-inference: invalid configuration: ${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
}

async function listen(app: ReturnType<typeof createApp>, config: ServerConfig, logger: Logger, auth: boolean): Promise<Server> {
  const server = app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  logger.info("listening", {host: config.host, port, auth});
  return server;
}

/** SIGTERM/SIGINT: drain (readyz 503, in-flight requests finish), free the model, close the cache, exit. */
function stopOnSignals(server: Server, state: MutableServingState, config: ServerConfig, logger: Logger, closeCache: () => Promise<void> | undefined): void {
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    logger.info("draining", {signal, grace_ms: config.shutdownGraceMs});
    stopping = drainAndClose(server, state, config.shutdownGraceMs, logger)
      .then(() => closeCache())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error("shutdown failed", {error: String(error)});
          process.exit(1);
        }
      );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/** Loads the model; a required GPU that is not there exits with EXIT_GPU_UNAVAILABLE and a termination message. */
async function loadEngine(config: ServerConfig, metrics: ServerMetrics, logger: Logger): Promise<LlamaEngine> {
  logger.info("loading model", {
    model: config.modelName,
    path: config.modelPath,
    threads: config.threads,
    cpu_budget_cores: config.cpuBudgetCores,
    slots: config.parallelSlots,
    context_size: config.contextSize,
    gpu: config.gpu
  });
  try {
    return await LlamaEngine.load({config, poolObserver: metrics, tokenObserver: metrics, promptCacheObserver: metrics, log: (level, message) => logger[level](message)});
  } catch (error) {
    if (!(error instanceof GpuUnavailableError)) throw error;
    logger.error("GPU required but unavailable", {error: error.message});
    process.stderr.write(`paddock-inference: ${error.message}\n`);
    // Kubernetes shows this file's content as the container's termination message.
    try {
      writeFileSync("/dev/termination-log", error.message);
    } catch {
      // not in a pod
    }
    process.exit(EXIT_GPU_UNAVAILABLE);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`paddock-inference: fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
