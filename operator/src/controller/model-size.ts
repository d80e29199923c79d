import {resolveModelUrl, shardUris, DEFAULT_HF_ENDPOINT} from "../../../contract/model-download.js";

/** How long a failed lookup is remembered before asking the host again. */
const RETRY_AFTER_MS = 30_000;

/**
 * The length of a model (all parts of a sharded one), asked of its host with HEAD requests,
 * for sizing the claim the operator creates. Anonymous: the operator never reads the model
 * token's Secret, so a host that refuses anonymous HEADs (gated models) needs
 * spec.model.cache.size. Lengths are remembered; failures for 30 s.
 */
export class ModelSizer {
  readonly #known = new Map<string, {bytes: number} | {error: string; at: number}>();
  readonly #pending = new Map<string, Promise<void>>();

  constructor(
    private readonly hfEndpoint: string = DEFAULT_HF_ENDPOINT,
    private readonly fetchImpl: typeof fetch = fetch,
    private readonly now: () => number = Date.now
  ) {}

  /** The length, or why it is not known. */
  async size(uri: string): Promise<{bytes: number} | {error: string}> {
    const answer = (k: {bytes: number} | {error: string; at: number}) => ("bytes" in k ? {bytes: k.bytes} : {error: k.error});
    const known = this.#known.get(uri);
    if (known && ("bytes" in known || this.now() - known.at < RETRY_AFTER_MS)) return answer(known);
    let pending = this.#pending.get(uri);
    if (!pending) {
      pending = this.#lookup(uri).finally(() => this.#pending.delete(uri));
      this.#pending.set(uri, pending);
    }
    await pending;
    return answer(this.#known.get(uri)!);
  }

  async #lookup(uri: string): Promise<void> {
    try {
      let bytes = 0;
      for (const part of shardUris(uri) ?? [uri]) {
        const {url} = resolveModelUrl(part, this.hfEndpoint);
        // The hub's redirect carries the file's length (X-Linked-Size): read there, the CDN
        // it points to is not asked at all (signed URLs often refuse HEAD).
        const hop = await this.fetchImpl(url, {method: "HEAD", redirect: "manual", signal: AbortSignal.timeout(15_000)});
        const linked = Number(hop.headers.get("x-linked-size") ?? NaN);
        if (hop.status >= 300 && hop.status < 400 && Number.isFinite(linked) && linked > 0) {
          bytes += linked;
          continue;
        }
        const res = hop.status >= 300 && hop.status < 400 ? await this.fetchImpl(url, {method: "HEAD", redirect: "follow", signal: AbortSignal.timeout(15_000)}) : hop;
        if (!res.ok) throw new Error(`HEAD ${url}: HTTP ${res.status}${res.status === 401 || res.status === 403 ? " (the operator asks anonymously)" : ""}`);
        const length = Number(res.headers.get("x-linked-size") ?? res.headers.get("content-length") ?? NaN);
        if (!Number.isFinite(length) || length <= 0) throw new Error(`HEAD ${url}: no Content-Length`);
        bytes += length;
      }
      this.#known.set(uri, {bytes});
    } catch (e) {
      const message = e instanceof Error ? `${e.message}${e.cause ? ` (${String(e.cause)})` : ""}` : String(e);
      this.#known.set(uri, {error: `cannot size the model's claim: ${message}; set spec.model.cache.size`, at: this.now()});
    }
  }
}
