import {Counter, Gauge, Histogram, Registry, collectDefaultMetrics} from "prom-client";
import {METRIC} from "../../contract/index.js";
import type {CacheObserver, PromptCacheObserver, SlotPoolObserver, TokenObserver} from "./core/observers.js";

/**
 * Latency buckets from 1 ms to 10 minutes: the tiny model answers in milliseconds, a large
 * one on a busy GPU in minutes, and both must be resolvable.
 */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600
];
/** Inter-token gaps: 0.1 ms (tiny model on CPU) to 2 s (a stalled batch). */
export const TOKEN_GAP_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2];

/** Cache lookups: 0.05 ms (memory) to 1 s (a Redis far away). */
export const CACHE_LOOKUP_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** The server's metrics, registered on a registry the caller owns (tests build their own). */
export class ServerMetrics implements SlotPoolObserver, TokenObserver, CacheObserver, PromptCacheObserver {
  readonly requests: Counter<"endpoint" | "status">;
  readonly duration: Histogram<"endpoint">;
  readonly active: Gauge;
  readonly queueDepth: Gauge;
  readonly busySlots: Gauge;
  readonly slots: Gauge;
  readonly modelMemory: Gauge<"device">;
  readonly ttft: Histogram<"endpoint">;
  readonly interToken: Histogram;
  readonly promptTokens: Counter;
  readonly promptCachedTokens: Counter;
  readonly promptCacheOperations: Counter<"op">;
  readonly promptCacheBytes: Gauge;
  readonly completionTokens: Counter;
  readonly rejected: Counter<"reason">;
  readonly cacheLookups: Counter<"result">;
  readonly cacheLookupDuration: Histogram;
  readonly cacheStoredBytes: Gauge;
  readonly cacheErrors: Counter<"op">;
  readonly responses: Counter<"source">;

  constructor(readonly registry: Registry, options: {defaultMetrics?: boolean} = {}) {
    const registers = [registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({register: registry});
    this.requests = new Counter({
      name: METRIC.requestsTotal,
      help: "Inference requests answered, by endpoint and HTTP status.",
      labelNames: ["endpoint", "status"],
      registers
    });
    this.duration = new Histogram({
      name: METRIC.requestDuration,
      help: "Time from request arrival to the last byte of the response, in seconds.",
      labelNames: ["endpoint"],
      buckets: LATENCY_BUCKETS,
      registers
    });
    this.active = new Gauge({name: METRIC.activeRequests, help: "Inference requests in flight on this replica: waiting for a slot, generating or being served from cache.", registers});
    this.queueDepth = new Gauge({name: METRIC.queueDepth, help: "Requests waiting for a free slot.", registers});
    this.busySlots = new Gauge({name: METRIC.busySlots, help: "Slots (context sequences) generating now.", registers});
    this.slots = new Gauge({name: METRIC.slots, help: "Configured parallel slots (PARALLEL_SLOTS).", registers});
    this.modelMemory = new Gauge({
      name: METRIC.modelMemory,
      help: "Bytes held for the model and its context, by device (ram, vram), as node-llama-cpp reports.",
      labelNames: ["device"],
      registers
    });
    this.ttft = new Histogram({
      name: METRIC.timeToFirstToken,
      help: "Time from request arrival to the first generated token, in seconds (queueing included).",
      labelNames: ["endpoint"],
      buckets: LATENCY_BUCKETS,
      registers
    });
    this.interToken = new Histogram({name: METRIC.interTokenLatency, help: "Time between consecutive generated tokens of one request, in seconds.", buckets: TOKEN_GAP_BUCKETS, registers});
    this.promptTokens = new Counter({name: METRIC.promptTokens, help: "Prompt tokens of generated completions.", registers});
    this.promptCachedTokens = new Counter({name: METRIC.promptCachedTokens, help: "Prompt tokens reused from a slot's KV cache instead of evaluated (prefix-aware slots and the prompt cache).", registers});
    this.promptCacheOperations = new Counter({
      name: METRIC.promptCacheOperations,
      help: "Prompt cache operations: save (a slot's state kept before it was overwritten), restore (loaded for a prompt it holds), evict, error.",
      labelNames: ["op"],
      registers
    });
    this.promptCacheBytes = new Gauge({name: METRIC.promptCacheBytes, help: "Disk taken by saved slot states (the prompt cache).", registers});
    this.completionTokens = new Counter({name: METRIC.completionTokens, help: "Completion tokens generated.", registers});
    this.rejected = new Counter({
      name: METRIC.rejectedRequests,
      help: "Requests refused before generation, by reason (queue_full = the 429s, draining, queue_timeout, unauthorized, invalid).",
      labelNames: ["reason"],
      registers
    });
    this.cacheLookups = new Counter({
      name: METRIC.cacheLookups,
      help: "Response cache decisions: hit, miss, bypass (not cacheable, or Cache-Control) and error (store failing).",
      labelNames: ["result"],
      registers
    });
    this.cacheLookupDuration = new Histogram({name: METRIC.cacheLookupDuration, help: "Time to look a response up in the cache store, in seconds.", buckets: CACHE_LOOKUP_BUCKETS, registers});
    this.cacheStoredBytes = new Gauge({name: METRIC.cacheStoredBytes, help: "Bytes held by the in-memory cache store.", registers});
    this.cacheErrors = new Counter({
      name: METRIC.cacheErrors,
      help: "Cache store failures (timeouts, refused connections, READONLY), by operation.",
      labelNames: ["op"],
      registers
    });
    this.responses = new Counter({
      name: METRIC.responsesBySource,
      help: "Successful completions by source: generated, cache (a stored entry) or coalesced (shared an identical in-flight generation).",
      labelNames: ["source"],
      registers
    });
  }

  onLookup(result: "hit" | "miss" | "error", seconds: number): void {
    this.cacheLookups.inc({result});
    this.cacheLookupDuration.observe(seconds);
  }

  onError(op: "get" | "set"): void {
    this.cacheErrors.inc({op});
  }

  onChange(state: {busy: number; queued: number}): void {
    this.busySlots.set(state.busy);
    this.queueDepth.set(state.queued);
  }

  onInterToken(seconds: number): void {
    this.interToken.observe(seconds);
  }

  onPromptCache(op: "save" | "restore" | "evict" | "error"): void {
    this.promptCacheOperations.inc({op});
  }

  onPromptCacheSize(bytes: number): void {
    this.promptCacheBytes.set(bytes);
  }

  onStoredBytes(bytes: number): void {
    this.cacheStoredBytes.set(bytes);
  }
}
