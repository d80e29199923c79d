import type {SamplingParams} from "../core/request.js";

/**
 * `deterministic` (default): cache only reproducible requests (temperature 0 or an explicit
 * seed). `all`: cache every request, sampled ones included. `off`: never.
 */
export type CacheMode = "deterministic" | "all" | "off";

/** What the `X-Cache` header says about a response. */
export type CacheStatus = "HIT" | "MISS" | "BYPASS";

export interface CacheDecision {
  /** Look the key up before generating. */
  readonly lookup: boolean;
  /** Store a completed generation under the key. */
  readonly store: boolean;
  /** Why the cache is bypassed, for logs; undefined when it is used. */
  readonly bypassReason?: string;
}

const BYPASS = (reason: string): CacheDecision => ({lookup: false, store: false, bypassReason: reason});

/**
 * Decides how the cache treats one request. `Cache-Control: no-store` neither reads nor
 * writes; `no-cache` skips the lookup but refreshes the entry, as HTTP caches do.
 */
export function decideCaching(mode: CacheMode, params: SamplingParams, cacheControl: string | undefined): CacheDecision {
  if (mode === "off") return BYPASS("cache off");
  const directives = new Set((cacheControl ?? "").toLowerCase().split(",").map((d) => d.trim()));
  if (directives.has("no-store")) return BYPASS("no-store");
  if (mode === "deterministic" && !isReproducible(params)) return BYPASS("sampled without seed");
  return {lookup: !directives.has("no-cache"), store: true};
}

/**
 * Greedy decoding or a fixed seed reproduces its output when the request runs alone.
 * (Batched decoding is not bitwise deterministic, so "reproducible" means "worth caching".)
 */
export function isReproducible(params: SamplingParams): boolean {
  return params.temperature === 0 || params.seed !== undefined;
}
