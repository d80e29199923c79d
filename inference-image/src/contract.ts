/**
 * The inference image's contract with the operator: environment variable names,
 * the HTTP port and the metric names the autoscaler and dashboards read.
 * Both wings import this module; it holds nothing else, so importing it pulls in
 * no code of either side.
 */

/** Environment variables the inference server reads (all optional except MODEL_PATH). */
export const ENV = {
  modelPath: "MODEL_PATH",
  modelName: "MODEL_NAME",
  host: "HOST",
  port: "PORT",
  parallelSlots: "PARALLEL_SLOTS",
  contextSize: "CONTEXT_SIZE",
  maxQueue: "MAX_QUEUE",
  gpu: "GPU",
  gpuLayers: "GPU_LAYERS",
  threads: "THREADS",
  requestTimeoutSeconds: "REQUEST_TIMEOUT_SECONDS",
  shutdownGraceSeconds: "SHUTDOWN_GRACE_SECONDS",
  apiKeysFile: "API_KEYS_FILE",
  maxRequestBytes: "MAX_REQUEST_BYTES",
  logLevel: "LOG_LEVEL",
  logPrompts: "LOG_PROMPTS",
  chatWrapper: "CHAT_WRAPPER",
  redisUrl: "REDIS_URL",
  cacheMode: "CACHE_MODE",
  cacheTtlSeconds: "CACHE_TTL_SECONDS",
  cacheMaxBytes: "CACHE_MAX_BYTES",
  cacheNamespace: "CACHE_NAMESPACE",
  cacheRedisTimeoutMs: "CACHE_REDIS_TIMEOUT_MS",
  modelSha256: "MODEL_SHA256"
} as const;

/** Port the server listens on unless PORT says otherwise. */
export const DEFAULT_PORT = 8000;

/** Metric names that other components query; keep in step with dashboards and the autoscaler. */
export const METRIC = {
  requestsTotal: "llm_requests_total",
  requestDuration: "llm_request_duration_seconds",
  activeRequests: "llm_active_requests",
  queueDepth: "llm_queue_depth",
  busySlots: "llm_busy_slots",
  slots: "llm_slots",
  modelMemory: "llm_model_memory_bytes",
  timeToFirstToken: "llm_time_to_first_token_seconds",
  interTokenLatency: "llm_inter_token_latency_seconds",
  promptTokens: "llm_prompt_tokens_total",
  completionTokens: "llm_completion_tokens_total",
  rejectedRequests: "llm_rejected_requests_total",
  cacheLookups: "llm_cache_lookups_total",
  cacheLookupDuration: "llm_cache_lookup_duration_seconds",
  cacheStoredBytes: "llm_cache_stored_bytes",
  cacheErrors: "llm_cache_errors_total",
  responsesBySource: "llm_responses_total"
} as const;

/** Health endpoints used by the Deployment's probes. */
export const PATHS = {
  healthz: "/healthz",
  readyz: "/readyz",
  metrics: "/metrics"
} as const;
