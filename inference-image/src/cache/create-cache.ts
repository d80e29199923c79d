import type {Logger} from "../../../contract/log.js";
import type {CacheObserver} from "../core/observers.js";
import type {CacheMode} from "./cache-policy.js";
import type {HandlerCache} from "./handler-cache.js";
import type {ModelIdentity} from "./cache-key.js";
import {fileSha256} from "./model-digest.js";
import {MemoryStore} from "./memory-store.js";
import {RedisStore} from "./redis-store.js";
import {ResponseCache} from "./response-cache.js";

/** The response cache (see README "Response cache"). */
export interface CacheConfig {
  readonly mode: CacheMode;
  /** Shared Redis; absent = an in-memory LRU per replica. */
  readonly redisUrl: string | undefined;
  /** Entry lifetime. Defaults to 3600 (s). */
  readonly ttlSeconds: number;
  /** Memory store bound. Defaults to 64 MiB. */
  readonly maxBytes: number;
  /** Separates services sharing one Redis; the operator sets one per LlmService. Defaults to "default". */
  readonly namespace: string;
  /** Bound on each Redis command. Defaults to 50 (ms). */
  readonly redisTimeoutMs: number;
}

export interface CacheSetup {
  readonly modelName: string;
  readonly modelPath: string;
  readonly modelSha256: string | undefined;
  readonly chatWrapper: string;
  readonly contextSize: number;
}

/**
 * Builds the response cache from configuration: Redis when REDIS_URL is set, else an
 * in-memory LRU. The model digest comes from MODEL_SHA256 or is hashed in the background;
 * until it is known every request is a BYPASS. Returns undefined when CACHE_MODE=off.
 */
export function createCache(config: CacheConfig, model: CacheSetup, metrics: CacheObserver & {onStoredBytes(bytes: number): void}, logger: Logger): HandlerCache | undefined {
  if (config.mode === "off") return undefined;
  let lastErrorLog = 0;
  const store = config.redisUrl
    ? new RedisStore({
        url: config.redisUrl,
        keyPrefix: `paddock:${config.namespace}:`,
        commandTimeoutMs: config.redisTimeoutMs,
        onError: (error) => {
          // Connection errors repeat on every reconnect attempt: log at most one a minute.
          if (Date.now() - lastErrorLog < 60_000) return;
          lastErrorLog = Date.now();
          logger.warn("redis unavailable; serving without cache until it returns", {error: error.message});
        }
      })
    : new MemoryStore(config.maxBytes, Date.now, (bytes) => metrics.onStoredBytes(bytes));

  let identity: ModelIdentity | undefined;
  const setDigest = (digest: string) => {
    identity = {name: model.modelName, digest, chatWrapper: model.chatWrapper, contextSize: model.contextSize};
  };
  if (model.modelSha256) setDigest(model.modelSha256);
  else {
    const started = performance.now();
    fileSha256(model.modelPath).then(
      (digest) => {
        setDigest(digest);
        logger.info("model digest computed; cache active", {sha256: digest, ms: Math.round(performance.now() - started)});
      },
      (error: unknown) => logger.error("cannot hash the model file; cache stays bypassed", {error: String(error)})
    );
  }
  logger.info("response cache", {store: store.kind, mode: config.mode, ttl_seconds: config.ttlSeconds, namespace: config.namespace});
  return {cache: new ResponseCache(store, config.ttlSeconds, metrics), mode: config.mode, identity: () => identity};
}
