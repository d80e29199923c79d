import type {CacheMode} from "./cache-policy.js";
import type {ModelIdentity} from "./cache-key.js";
import type {ResponseCache} from "./response-cache.js";

/** The response cache as the request handlers see it. */
export interface HandlerCache {
  readonly cache: ResponseCache;
  readonly mode: CacheMode;
  /** Undefined until the model file's digest is known; the cache is bypassed until then. */
  readonly identity: () => ModelIdentity | undefined;
}
