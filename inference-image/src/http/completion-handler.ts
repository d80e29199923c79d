import type {Request, Response} from "express";
import {cacheKey, type ModelIdentity} from "./cache/cache-key.js";
import {decideCaching, type CacheMode, type CacheStatus} from "./cache/cache-policy.js";
import type {ResponseCache} from "./cache/response-cache.js";
import type {Engine, GenerationResult} from "./engine.js";
import {ApiError, internalError, invalidRequest, modelNotFound} from "./errors.js";
import {Flight, type FlightRegistry} from "./flight.js";
import type {Logger} from "../../contract/log.js";
import type {ServerMetrics} from "./metrics.js";
import type {Endpoint, InferenceRequest} from "./openai-request.js";
import type {RequestLocals} from "./request-context.js";
import {ResponseFormatter, totalOf, type CompletionRecord} from "./responses.js";
import {SseStream} from "./sse.js";

/** The response cache as the handler sees it. */
export interface HandlerCache {
  readonly cache: ResponseCache;
  readonly mode: CacheMode;
  /** Undefined until the model file's digest is known; the cache is bypassed until then. */
  readonly identity: () => ModelIdentity | undefined;
}

export interface CompletionHandlerDeps {
  /** The loaded engine; routes refuse requests before it exists. */
  readonly engine: () => Engine;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /** Upper bound on one request, queueing included, in ms. */
  readonly requestTimeoutMs: number;
  readonly cache?: HandlerCache | undefined;
  readonly flights: FlightRegistry;
  /** Put prompt text in the request log (LOG_PROMPTS). Off by default: prompts are user data. */
  readonly logPrompts?: boolean;
}

type Res = Response<unknown, RequestLocals>;

/** A generation that ran to its natural end; only these are cached. */
const isComplete = (r: GenerationResult) => r.stopCause === "eos" || r.stopCause === "stop_sequence" || r.stopCause === "max_tokens";

const toRecord = (chunks: readonly string[], r: GenerationResult): CompletionRecord => ({
  ...(r.logprobs ? {logprobs: r.logprobs} : {}),
  ...(r.toolCalls ? {toolCalls: r.toolCalls} : {}),
  chunks: [...chunks],
  finishReason: r.finishReason,
  promptTokens: r.promptTokens,
  cachedTokens: r.cachedTokens,
  completionTokens: r.completionTokens
});

/**
 * Serves one generating endpoint: parse, consult the cache, then attach to a generation
 * (a new one, or an identical one already running on this replica) and render it.
 * Parsing errors surface before any slot is taken; a stream opens only once a slot is
 * held, so 429/503 keep their status codes; a client that leaves detaches, and the
 * generation stops within one token once nobody is attached.
 */
export function createCompletionHandler(deps: CompletionHandlerDeps, endpoint: Endpoint, parse: (body: unknown) => InferenceRequest) {
  const {metrics} = deps;

  return async (req: Request, res: Res): Promise<void> => {
    let handled!: () => void;
    res.locals.handled = new Promise<void>((resolve) => (handled = resolve));
    metrics.active.inc();
    try {
      await serve(req, res);
    } finally {
      metrics.active.dec();
      handled();
    }
  };

  async function serve(req: Request, res: Res): Promise<void> {
    const engine = deps.engine();
    const request = parse(req.body);
    if (request.model !== undefined && request.model !== engine.modelName) throw modelNotFound(request.model);
    const locals = res.locals;
    locals.log.stream = request.stream;
    if (deps.logPrompts) locals.log.prompt = request.prompt.kind === "chat" ? request.prompt.messages : request.prompt.text;
    const formatter = new ResponseFormatter(endpoint, engine.modelName, locals.requestId, Math.floor(Date.now() / 1000), request.includeUsage, request.tools);
    if (request.n > 1) return serveChoices(engine, request, formatter, res);

    const plan = await consultCache(request, locals.tenant, req.get("cache-control"));
    res.set("X-Cache", plan.status);
    locals.log.cache = plan.status;
    if (plan.hit) {
      metrics.responses.inc({source: "cache"});
      // Served without the model: every prompt token counts as cached.
      const hit = {...plan.hit, cachedTokens: plan.hit.promptTokens};
      Object.assign(locals.log, {prompt_tokens: plan.hit.promptTokens, completion_tokens: plan.hit.completionTokens, finish_reason: plan.hit.finishReason});
      if (request.stream) {
        const sse = new SseStream(res);
        sse.start({"X-Request-Id": locals.requestId});
        for (const chunk of formatter.allChunks(hit)) sse.send(chunk);
        sse.end();
      } else {
        res.json(formatter.body(hit));
      }
      return;
    }

    const start = () =>
      new Flight(engine, request, deps.requestTimeoutMs, {
        tenant: locals.tenant,
        finish: async (result, chunks) => {
          metrics.promptTokens.inc(result.promptTokens);
          metrics.promptCachedTokens.inc(result.cachedTokens);
          metrics.completionTokens.inc(result.completionTokens);
          // Stored before any response ends (ResponseCache.save never throws).
          if (plan.key && plan.store && isComplete(result)) await deps.cache?.cache.save(plan.key, toRecord(chunks, result));
        }
      });
    // Only cacheable requests share a generation: sampled ones must each get their own.
    const {flight, joined} = plan.key ? deps.flights.join(plan.key, start) : {flight: start(), joined: false};
    if (joined) locals.log.coalesced = true;
    await follow(flight, joined, request, formatter, res);
  }

  /**
   * `n` > 1: n choices of one prompt. Greedy choices are identical by definition, so one
   * generation serves them all; sampled ones run side by side on n slots (choice i with
   * seed + i when a seed is given). Not cached and not shared with other requests.
   */
  async function serveChoices(engine: Engine, request: InferenceRequest, formatter: ResponseFormatter, res: Res): Promise<void> {
    if (request.n > engine.slots.size) throw invalidRequest(`Invalid value for 'n': at most ${engine.slots.size} (this server's slots).`, "n", "invalid_value");
    const locals = res.locals;
    res.set("X-Cache", "BYPASS");
    Object.assign(locals.log, {cache: "BYPASS", n: request.n});
    const abort = new AbortController();
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, deps.requestTimeoutMs);
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.on("close", onClose);
    const sse = request.stream ? new SseStream(res) : undefined;
    const runs = request.params.temperature === 0 ? 1 : request.n;
    const indices = (run: number) => (runs === 1 ? Array.from({length: request.n}, (_, i) => i) : [run]);
    let sawText = false;
    const open = () => {
      if (!sse || sse.open || res.destroyed) return;
      sse.start({"X-Request-Id": locals.requestId});
      for (let i = 0; i < request.n; i++) for (const c of formatter.opening(i)) sse.send(c);
    };
    try {
      const results = await Promise.all(
        Array.from({length: runs}, (_, run) =>
          engine
            .generate(
              {...request, params: {...request.params, seed: request.params.seed === undefined ? undefined : request.params.seed + run}},
              {
                tenant: locals.tenant,
                signal: abort.signal,
                timedOut: () => timedOut,
                onStart: open,
                onText: (piece) => {
                  if (!sawText) {
                    sawText = true;
                    metrics.ttft.observe({endpoint}, (performance.now() - locals.startedAt) / 1000);
                  }
                  if (sse) for (const i of indices(run)) for (const c of formatter.text(piece, i)) sse.send(c);
                }
              }
            )
            .catch((error: unknown) => {
              abort.abort(); // one choice failed (a full queue, say): the others stop too
              throw error;
            })
        )
      );
      if (results.some((r) => r.stopCause === "aborted") || res.destroyed) {
        locals.log.outcome = "client_closed";
        return;
      }
      const records = Array.from({length: request.n}, (_, i) => {
        const r = results[runs === 1 ? 0 : i]!;
        return {chunks: [r.text], finishReason: r.finishReason, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, completionTokens: r.completionTokens, ...(r.logprobs ? {logprobs: r.logprobs} : {})};
      });
      const total = totalOf(records);
      metrics.promptTokens.inc(total.promptTokens);
      metrics.completionTokens.inc(results.reduce((a, r) => a + r.completionTokens, 0));
      metrics.responses.inc({source: "generated"});
      Object.assign(locals.log, {prompt_tokens: total.promptTokens, completion_tokens: total.completionTokens});
      if (sse) {
        records.forEach((r, i) => sse.send(formatter.finish(r, i)));
        if (request.includeUsage) sse.send(formatter.usageChunk(total));
        sse.end();
      } else res.json(formatter.choicesBody(records));
    } catch (error) {
      if (!sse?.open) throw error;
      const apiError = error instanceof ApiError ? error : internalError();
      locals.log.error = apiError.code;
      sse.fail(apiError);
    } finally {
      clearTimeout(deadline);
      res.off("close", onClose);
    }
  }

  /** Decides HIT / MISS / BYPASS; a failing store is a BYPASS that does not write either. */
  async function consultCache(request: InferenceRequest, tenant: string, cacheControl: string | undefined) {
    const bypass = (reason: string) => {
      metrics.cacheLookups.inc({result: "bypass"});
      return {status: "BYPASS" as CacheStatus, key: undefined, store: false, hit: undefined, reason};
    };
    const cache = deps.cache;
    if (!cache) return bypass("cache off");
    const identity = cache.identity();
    if (!identity) return bypass("model digest pending");
    const decision = decideCaching(cache.mode, request.params, cacheControl);
    if (decision.bypassReason !== undefined) return bypass(decision.bypassReason);
    const key = cacheKey(request, identity, tenant);
    if (!decision.lookup) return {status: "MISS" as CacheStatus, key, store: decision.store, hit: undefined};
    const found = await cache.cache.lookup(key);
    if (found.status === "hit") return {status: "HIT" as CacheStatus, key, store: false, hit: found.record};
    if (found.status === "error") return {status: "BYPASS" as CacheStatus, key: undefined, store: false, hit: undefined, reason: "store error"};
    return {status: "MISS" as CacheStatus, key, store: decision.store, hit: undefined};
  }

  /** Renders a flight to this response, as a stream or one body; resolves when done. */
  function follow(flight: Flight, joined: boolean, request: InferenceRequest, formatter: ResponseFormatter, res: Res): Promise<void> {
    const locals = res.locals;
    const sse = request.stream ? new SseStream(res) : undefined;
    let sawText = false;
    const logResult = (result: GenerationResult) =>
      Object.assign(locals.log, {
        prompt_tokens: result.promptTokens,
        completion_tokens: result.completionTokens,
        finish_reason: result.finishReason,
        stop_cause: result.stopCause,
        queue_ms: Math.round(result.queueMs * 10) / 10
      });
    return new Promise<void>((resolve, reject) => {
      let detach = () => false;
      const onClose = () => {
        if (res.writableFinished) return;
        locals.log.outcome = "client_closed";
        // The last client to leave stops the generation; its log line waits for that (one token).
        if (detach()) flight.done.then(logResult, () => {}).finally(resolve);
        else resolve();
      };
      const finish = () => {
        res.off("close", onClose);
        resolve();
      };
      res.on("close", onClose);
      detach = flight.attach({
        onStart: () => {
          if (!sse || res.destroyed) return;
          sse.start({"X-Request-Id": locals.requestId});
          for (const c of formatter.opening()) sse.send(c);
        },
        onText: (piece) => {
          if (!sawText) {
            sawText = true;
            const ttft = (performance.now() - locals.startedAt) / 1000;
            metrics.ttft.observe({endpoint}, ttft);
            locals.log.ttft_ms = Math.round(ttft * 10_000) / 10;
          }
          if (sse) for (const c of formatter.text(piece)) sse.send(c);
        },
        onEnd: (result) => {
          logResult(result);
          if (result.stopCause === "aborted" || res.destroyed) {
            locals.log.outcome = "client_closed";
            return finish();
          }
          metrics.responses.inc({source: joined ? "coalesced" : "generated"});
          const record = toRecord(flight.chunks, result);
          if (sse) {
            for (const c of formatter.closing(record)) sse.send(c);
            sse.end();
          } else {
            res.json(formatter.body(record));
          }
          finish();
        },
        onError: (error) => {
          res.off("close", onClose);
          if (!sse?.open) return reject(error);
          // Headers are gone: the error becomes the stream's last event.
          const apiError = error instanceof ApiError ? error : internalError();
          if (!(error instanceof ApiError)) deps.logger.error("generation failed", {id: locals.requestId, error: String(error)});
          locals.log.error = apiError.code;
          sse.fail(apiError);
          resolve();
        }
      });
    });
  }
}
