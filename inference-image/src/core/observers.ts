/**
 * Hooks through which the engine and the cache report what happens, so that neither
 * imports metrics; `ServerMetrics` (metrics.ts) implements them all.
 */

/** The slot pool's occupancy, on every change. */
export interface SlotPoolObserver {
  onChange(state: {busy: number; queued: number}): void;
}

/** Per-token timing, so the engine reports latency. */
export interface TokenObserver {
  onInterToken(seconds: number): void;
}

/** Saved slot states. */
export interface PromptCacheObserver {
  onPromptCache(op: "save" | "restore" | "evict" | "error"): void;
  onPromptCacheSize(bytes: number): void;
}

/** The response cache's store. */
export interface CacheObserver {
  onLookup(result: "hit" | "miss" | "error", seconds: number): void;
  onError(op: "get" | "set", error: unknown): void;
}
