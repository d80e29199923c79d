import type {Request, Response} from "express";
import {ApiError, modelNotFound, queueTimeout, unsupportedParameter} from "../core/errors.js";
import type {Embedder} from "../core/generation.js";
import {embeddingsKey} from "../cache/cache-key.js";
import type {HandlerCache} from "../cache/handler-cache.js";
import {normalize, parseEmbeddingRequest, toBase64} from "../openai/embeddings-request.js";
import type {ServerMetrics} from "../metrics.js";
import type {RequestLocals} from "./request-context.js";

export interface EmbeddingsHandlerDeps {
  readonly engine: () => Embedder;
  readonly cache?: HandlerCache | undefined;
  /** Counts the request in llm_active_requests, as a completion is: the autoscaler and LeastLoad see it. */
  readonly metrics: Pick<ServerMetrics, "active">;
  /** Upper bound on one request, waiting for its turn included, in ms. */
  readonly requestTimeoutMs: number;
}

/**
 * Serves `POST /v1/embeddings`; with a cache, identical inputs of a tenant are embedded once.
 * Bounded like completions: a full queue is 429 (Embeddings), the deadline a 503.
 */
export function createEmbeddingsHandler(deps: EmbeddingsHandlerDeps) {
  const {engine, cache} = deps;
  return async (req: Request, res: Response<unknown, RequestLocals>): Promise<void> => {
    let handled!: () => void;
    res.locals.handled = new Promise<void>((resolve) => (handled = resolve));
    deps.metrics.active.inc();
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.on("close", onClose);
    const deadline = AbortSignal.timeout(deps.requestTimeoutMs);
    const signal = AbortSignal.any([abort.signal, deadline]);
    try {
      const e = engine();
      const request = parseEmbeddingRequest(req.body);
      if (request.model !== e.modelName) throw modelNotFound(request.model);
      if (request.dimensions !== undefined && request.dimensions !== e.embeddingSize) {
        throw unsupportedParameter("dimensions", `must be ${e.embeddingSize} (this model's embedding size) or absent: shortening embeddings is not supported`);
      }
      const identity = cache?.identity();
      const noStore = /no-store|no-cache/i.test(req.get("cache-control") ?? "");
      const key = cache && cache.mode !== "off" && identity && !noStore ? embeddingsKey(request.inputs, identity, res.locals.tenant) : undefined;
      const hit = key ? await cache!.cache.lookupEmbeddings(key) : undefined;
      res.set("X-Cache", hit ? "HIT" : key ? "MISS" : "BYPASS");
      const {vectors, promptTokens} = hit ?? (await e.embed(request.inputs, signal));
      if (key && !hit) await cache!.cache.saveEmbeddings(key, {vectors, promptTokens});
      Object.assign(res.locals.log, {prompt_tokens: promptTokens, inputs: request.inputs.length});
      res.json({
        object: "list",
        data: vectors.map((v, index) => ({object: "embedding", index, embedding: request.encoding === "base64" ? toBase64(normalize(v)) : normalize(v)})),
        model: e.modelName,
        usage: {prompt_tokens: promptTokens, total_tokens: promptTokens}
      });
    } catch (error) {
      if (deadline.aborted && !abort.signal.aborted) throw queueTimeout(1);
      if (error instanceof ApiError || !abort.signal.aborted) throw error;
    } finally {
      deps.metrics.active.dec();
      res.off("close", onClose);
      handled();
    }
  };
}
