/**
 * The contract between Paddock's programs: the operator (control plane), the inference
 * server (every model pod) and, later, the router. Whatever two of them must agree on
 * lives here and nowhere else: environment variable names, ports, paths, container names,
 * the programs' entry points inside the image, and metric names.
 *
 * This module imports nothing, and the programs import nothing of each other: a test
 * (test/unit/contract.test.ts) feeds the environment the operator writes through the
 * server's own config parser, and an ESLint rule (eslint.config.js) keeps the imports
 * honest.
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
  gpuRequired: "GPU_REQUIRED",
  gpuLayers: "GPU_LAYERS",
  flashAttention: "FLASH_ATTENTION",
  modelMmap: "MODEL_MMAP",
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
  modelSha256: "MODEL_SHA256",
  promptCacheDir: "PROMPT_CACHE_DIR",
  promptCacheBytes: "PROMPT_CACHE_BYTES",
  promptCacheMinTokens: "PROMPT_CACHE_MIN_TOKENS"
} as const;

/** Environment of the model download program (the `fetch-model` init container). */
export const FETCH_ENV = {
  /** https:// URL, or hf://<org>/<repo>/<path>.gguf[@<revision>], of the model file. */
  url: "MODEL_URL",
  /** Where the verified file goes (the server's MODEL_PATH). */
  path: ENV.modelPath,
  /** Expected sha256; optional (for hf:// the hub's LFS digest is used when absent). */
  sha256: ENV.modelSha256,
  /** Seconds without a byte before the transfer reconnects and resumes. */
  stallTimeoutSeconds: "STALL_TIMEOUT_SECONDS",
  /** Reconnects allowed before the download fails. */
  maxRetries: "DOWNLOAD_MAX_RETRIES",
  /** Bearer token for the model host (hf://), from a Secret. */
  token: "HF_TOKEN",
  /** The Hugging Face hub or a mirror, as the hub's clients read HF_ENDPOINT. */
  hfEndpoint: "HF_ENDPOINT"
} as const;

/**
 * Environment of the router (one Deployment per LlmService, in front of its model pods).
 * HOST, PORT, MODEL_NAME, LOG_LEVEL and MAX_REQUEST_BYTES mean what they mean for the server.
 */
export const ROUTER_ENV = {
  host: ENV.host,
  port: ENV.port,
  modelName: ENV.modelName,
  logLevel: ENV.logLevel,
  maxRequestBytes: ENV.maxRequestBytes,
  /** Namespace of the service (the downward API's metadata.namespace). */
  namespace: "ROUTER_NAMESPACE",
  /** The LlmService's name (labels of the router's metrics and log lines). */
  service: "ROUTER_SERVICE",
  /** The Service whose EndpointSlices list the model pods. */
  endpointsService: "ROUTER_ENDPOINTS_SERVICE",
  /** Comma-separated http://host:port replicas instead of EndpointSlices: outside Kubernetes, benchmarks. */
  staticEndpoints: "ROUTER_STATIC_ENDPOINTS",
  /** LeastLoad or PrefixHash. */
  strategy: "ROUTER_STRATEGY",
  /** PrefixHash's bound: a replica takes a key only while under loadFactor x the average load. */
  loadFactor: "ROUTER_LOAD_FACTOR",
  /** Requests held while no replica is ready, before 503. */
  maxHeldRequests: "ROUTER_MAX_HELD_REQUESTS",
  holdTimeoutSeconds: "ROUTER_HOLD_TIMEOUT_SECONDS",
  /** Upper bound on one request, hold included (the server's REQUEST_TIMEOUT_SECONDS). */
  requestTimeoutSeconds: ENV.requestTimeoutSeconds,
  /** The Lease the router annotates with its held requests: the operator's wake-up signal. */
  demandLease: "ROUTER_DEMAND_LEASE",
  /** This router's pod name (the downward API's metadata.name): its key in the demand Lease. */
  podName: "POD_NAME"
} as const;

/** Routing strategies (spec.routing.strategy). */
export const ROUTING_STRATEGIES = ["LeastLoad", "PrefixHash"] as const;
export type RoutingStrategy = (typeof ROUTING_STRATEGIES)[number];

/**
 * The demand Lease: each router writes `<prefix><pod name>: "<held> <RFC 3339 time>"` in its
 * annotations while it holds requests for a service with no ready replica; the operator's
 * autoscaler reads entries younger than DEMAND_FRESH_SECONDS and scales from zero at once.
 */
export const DEMAND_ANNOTATION_PREFIX = "held.llm.paddock.dev/";
/** Routers rewrite their entry this often while they hold requests. */
export const DEMAND_REFRESH_SECONDS = 5;
/** Older entries are ignored (their router died or stopped holding without saying so). */
export const DEMAND_FRESH_SECONDS = 20;

/** Response header naming the replica (pod) that served a request through the router. */
export const REPLICA_HEADER = "x-paddock-replica";
/** Request id header: kept when the client sends one, made otherwise; passed to the replica. */
export const REQUEST_ID_HEADER = "x-request-id";

/** Port the server listens on unless PORT says otherwise; the pod's container port. */
export const DEFAULT_PORT = 8000;
/** Name of that container port, used by probes and Services. */
export const HTTP_PORT_NAME = "http";

/** Container names in a model pod; the operator reads pod status by them. */
export const CONTAINER = {
  server: "server",
  fetchModel: "fetch-model",
  router: "router"
} as const;

/** Entry points inside the inference image (its working directory is /app). */
export const IMAGE_ENTRY = {
  server: "dist/inference-image/src/main.js",
  fetchModel: "dist/inference-image/src/model/main.js"
} as const;

/** Entry points inside the operator image, which also carries the router. */
export const OPERATOR_IMAGE_ENTRY = {
  operator: "dist/operator/src/main.js",
  router: "dist/router/src/main.js"
} as const;

/** Exit code of every program for a bad configuration (a flag, a variable, a file it names). */
export const EXIT_CONFIG = 2;
/**
 * Exit code of the server when GPU_REQUIRED is set and no GPU can be used; its message is
 * the container's termination message, which the operator shows as GPUUnavailable.
 */
export const EXIT_GPU_UNAVAILABLE = 3;

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
  promptCachedTokens: "llm_prompt_cached_tokens_total",
  promptCacheOperations: "llm_prompt_cache_operations_total",
  promptCacheBytes: "llm_prompt_cache_bytes",
  completionTokens: "llm_completion_tokens_total",
  rejectedRequests: "llm_rejected_requests_total",
  cacheLookups: "llm_cache_lookups_total",
  cacheLookupDuration: "llm_cache_lookup_duration_seconds",
  cacheStoredBytes: "llm_cache_stored_bytes",
  cacheErrors: "llm_cache_errors_total",
  responsesBySource: "llm_responses_total"
} as const;

/** The router's metrics (its own /metrics); the chart's dashboard and alerts use them. */
export const ROUTER_METRIC = {
  requests: "llm_router_requests_total",
  upstreamTimeToFirstByte: "llm_router_upstream_ttfb_seconds",
  inFlight: "llm_router_in_flight_requests",
  held: "llm_router_held_requests",
  retries: "llm_router_retries_total",
  affinity: "llm_router_prefix_affinity_total",
  replicas: "llm_router_ready_replicas",
  ejections: "llm_router_ejections_total"
} as const;

/** Health endpoints used by the Deployment's probes, and the metrics path Prometheus scrapes. */
export const PATHS = {
  healthz: "/healthz",
  readyz: "/readyz",
  metrics: "/metrics"
} as const;
