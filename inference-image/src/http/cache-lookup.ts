import {cacheKey} from "../cache/cache-key.js";
import {decideCaching, type CacheStatus} from "../cache/cache-policy.js";
import type {HandlerCache} from "../cache/handler-cache.js";
import type {CompletionRecord} from "../core/record.js";
import type {InferenceRequest} from "../core/request.js";
import type {ServerMetrics} from "../metrics.js";

/** What the response cache says about one request. */
export interface CachePlan {
  readonly status: CacheStatus;
  /** The key to store under (and to share an identical in-flight generation by); undefined: neither. */
  readonly key: string | undefined;
  /** Whether a completed generation is stored under `key`. */
  readonly store: boolean;
  readonly hit: CompletionRecord | undefined;
}

const BYPASS: CachePlan = {status: "BYPASS", key: undefined, store: false, hit: undefined};

/** Decides HIT / MISS / BYPASS; a failing store is a BYPASS that does not write either. */
export async function consultCache(cache: HandlerCache | undefined, metrics: ServerMetrics, request: InferenceRequest, tenant: string, cacheControl: string | undefined): Promise<CachePlan> {
  const bypass = () => {
    metrics.cacheLookups.inc({result: "bypass"});
    return BYPASS;
  };
  if (!cache) return bypass();
  const identity = cache.identity();
  if (!identity) return bypass(); // the model digest is still being computed
  const decision = decideCaching(cache.mode, request.params, cacheControl);
  if (decision.bypassReason !== undefined) return bypass();
  const key = cacheKey(request, identity, tenant);
  if (!decision.lookup) return {status: "MISS", key, store: decision.store, hit: undefined};
  const found = await cache.cache.lookup(key);
  if (found.status === "hit") return {status: "HIT", key, store: false, hit: found.record};
  if (found.status === "error") return BYPASS;
  return {status: "MISS", key, store: decision.store, hit: undefined};
}
