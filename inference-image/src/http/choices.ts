import type {Response} from "express";
import {ApiError, internalError, invalidRequest} from "../core/errors.js";
import type {Engine, GenerationResult} from "../core/generation.js";
import type {CompletionRecord} from "../core/record.js";
import type {Endpoint, InferenceRequest} from "../core/request.js";
import {totalOf, type ResponseFormatter} from "../openai/responses.js";
import type {CompletionHandlerDeps} from "./handler-deps.js";
import type {RequestLocals} from "./request-context.js";
import {SseStream} from "./sse.js";

type Res = Response<unknown, RequestLocals>;

/**
 * `n` > 1: n choices of one prompt. Greedy choices are identical by definition, so one
 * generation serves them all; sampled ones run side by side on n slots (choice i with
 * seed + i when a seed is given). Not cached and not shared with other requests.
 */
export async function serveChoices(deps: CompletionHandlerDeps, endpoint: Endpoint, engine: Engine, request: InferenceRequest, formatter: ResponseFormatter, res: Res): Promise<void> {
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
  try {
    const results = await generateChoices(deps, endpoint, engine, request, formatter, res, sse, {signal: abort.signal, timedOut: () => timedOut});
    if (results.some((r) => r.stopCause === "aborted") || res.destroyed) {
      locals.log.outcome = "client_closed";
      return;
    }
    respondChoices(deps, request, formatter, res, sse, results);
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

/** Runs the generations (one when greedy); a failing one stops the others. Streams text as it comes. */
function generateChoices(
  deps: CompletionHandlerDeps,
  endpoint: Endpoint,
  engine: Engine,
  request: InferenceRequest,
  formatter: ResponseFormatter,
  res: Res,
  sse: SseStream | undefined,
  abort: {signal: AbortSignal; timedOut: () => boolean}
): Promise<GenerationResult[]> {
  const locals = res.locals;
  const runs = request.params.temperature === 0 ? 1 : request.n;
  const indices = (run: number) => (runs === 1 ? Array.from({length: request.n}, (_, i) => i) : [run]);
  const stop = new AbortController();
  const signal = AbortSignal.any([abort.signal, stop.signal]);
  let sawText = false;
  const open = () => {
    if (!sse || sse.open || res.destroyed) return;
    sse.start({"X-Request-Id": locals.requestId});
    for (let i = 0; i < request.n; i++) for (const c of formatter.opening(i)) sse.send(c);
  };
  const onText = (run: number) => (piece: string) => {
    if (!sawText) {
      sawText = true;
      deps.metrics.ttft.observe({endpoint}, (performance.now() - locals.startedAt) / 1000);
    }
    if (sse) for (const i of indices(run)) for (const c of formatter.text(piece, i)) sse.send(c);
  };
  return Promise.all(
    Array.from({length: runs}, (_, run) =>
      engine
        .generate(
          {...request, params: {...request.params, seed: request.params.seed === undefined ? undefined : request.params.seed + run}},
          {tenant: locals.tenant, signal, timedOut: abort.timedOut, onStart: open, onText: onText(run)}
        )
        .catch((error: unknown) => {
          stop.abort(); // one choice failed (a full queue, say): the others stop too
          throw error;
        })
    )
  );
}

/** The choices as one body, or their closing chunks; usage counts the prompt once. */
function respondChoices(deps: CompletionHandlerDeps, request: InferenceRequest, formatter: ResponseFormatter, res: Res, sse: SseStream | undefined, results: readonly GenerationResult[]): void {
  const records: CompletionRecord[] = Array.from({length: request.n}, (_, i) => {
    const r = results[results.length === 1 ? 0 : i]!;
    return {chunks: [r.text], finishReason: r.finishReason, promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, completionTokens: r.completionTokens, ...(r.logprobs ? {logprobs: r.logprobs} : {})};
  });
  const total = totalOf(records);
  deps.metrics.promptTokens.inc(total.promptTokens);
  deps.metrics.completionTokens.inc(results.reduce((a, r) => a + r.completionTokens, 0));
  deps.metrics.responses.inc({source: "generated"});
  Object.assign(res.locals.log, {prompt_tokens: total.promptTokens, completion_tokens: total.completionTokens});
  if (!sse) return void res.json(formatter.choicesBody(records));
  records.forEach((r, i) => sse.send(formatter.finish(r, i)));
  if (request.includeUsage) sse.send(formatter.usageChunk(total));
  sse.end();
}
