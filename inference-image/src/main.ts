import {writeFileSync} from "node:fs";
import {EXIT_CONFIG, EXIT_GPU_UNAVAILABLE} from "../../contract/index.js";
import {createLogger} from "../../contract/log.js";
import {Registry} from "prom-client";
import {ApiKeys} from "./api-keys.js";
import {createApp} from "./app.js";
import {createCache} from "./cache/create-cache.js";
import {ConfigError, loadServerConfig} from "./config.js";
import {GpuUnavailableError, LlamaEngine} from "./engine.js";
import {ServerMetrics} from "./metrics.js";
import {drainAndClose, type MutableServingState} from "./server.js";

/**
 * Entry point of the inference image: read the environment once, start listening (so
 * liveness answers during a long model load), load the model, serve, and drain on SIGTERM.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadServerConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`paddock-inference: invalid configuration: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
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

  const server = app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  logger.info("listening", {host: config.host, port, auth: apiKeys !== undefined});

  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    logger.info("draining", {signal, grace_ms: config.shutdownGraceMs});
    stopping = drainAndClose(server, state, config.shutdownGraceMs, logger)
      .then(() => cache?.cache.close())
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

  logger.info("loading model", {
    model: config.modelName,
    path: config.modelPath,
    threads: config.threads,
    cpu_budget_cores: config.cpuBudgetCores,
    slots: config.parallelSlots,
    context_size: config.contextSize,
    gpu: config.gpu
  });
  const started = performance.now();
  let engine: LlamaEngine;
  try {
    engine = await LlamaEngine.load({
      config,
      poolObserver: metrics,
      tokenObserver: metrics,
      promptCacheObserver: metrics,
      log: (level, message) => logger[level](message)
    });
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
  if (state.draining) {
    await engine.close();
    return;
  }
  state.engine = engine;
  logger.info("ready", {model: config.modelName, gpu: engine.gpu, gpu_layers: engine.gpuLayers, load_ms: Math.round(performance.now() - started)});
}

main().catch((error: unknown) => {
  process.stderr.write(`paddock-inference: fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
