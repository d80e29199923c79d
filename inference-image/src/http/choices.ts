import type {Response} from "express";
import {ApiError, internalError, invalidRequest} from "../core/errors.js";
import type {Engine, GenerationResult, TokenLogprob} from "../core/generation.js";
import type {CompletionRecord} from "../core/record.js";
import type {Endpoint, InferenceRequest} from "../core/request.js";
import {totalOf, type ResponseFormatter} from "../openai/responses.js";
import type {CompletionHandlerDeps} from "./handler-deps.js";
import type {RequestLocals} from "./request-context.js";
import {toRecord} from "./follow-flight.js";
import {SseStream} from "./sse.js";

type Res = Response<unknown, RequestLocals>;

/**
 * `n` > 1, or a legacy completion's batch of prompts: n choices of each prompt, prompt-major
 * (choice index = prompt index x n + i). Greedy choices of one prompt are identical by
 * definition, so one generation serves them; sampled ones run side by side, one slot each
 * (choice i with seed + i when a seed is given). Not cached and not shared with other requests.
 */
export async function serveChoices(deps: CompletionHandlerDeps, endpoint: Endpoint, engine: Engine, request: InferenceRequest, formatter: ResponseFormatter, res: Res): Promise<void> {
  const runs = runsOf(request);
  if (runs.length > engine.slots.size) throw tooManyRuns(request, runs.length, engine.slots.size);
  const locals = res.locals;
  res.set("X-Cache", "BYPASS");
  Object.assign(locals.log, {cache: "BYPASS", n: request.n, ...(request.batch ? {prompts: request.batch.length} : {})});
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
    const results = await generateChoices(deps, endpoint, engine, runs, formatter, res, sse, {signal: abort.signal, timedOut: () => timedOut});
    if (results.some((r) => r.stopCause === "aborted") || res.destroyed) {
      locals.log.outcome = "client_closed";
      return;
    }
    respondChoices(deps, request, runs, formatter, res, sse, results);
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

/** One generation and the choice indices it answers. */
interface Run {
  readonly request: InferenceRequest;
  readonly prompt: number;
  readonly indices: readonly number[];
}

/** The generations a request needs: one per prompt when greedy, else one per choice. */
export function runsOf(request: InferenceRequest): Run[] {
  const prompts = request.batch ?? [request.prompt];
  const {n, params} = request;
  const single: InferenceRequest = {...request, n: 1};
  delete (single as {batch?: unknown}).batch;
  return prompts.flatMap((prompt, p) => {
    const base = {...single, prompt};
    if (params.temperature === 0) return [{request: base, prompt: p, indices: Array.from({length: n}, (_, i) => p * n + i)}];
    return Array.from({length: n}, (_, i) => ({
      request: {...base, params: {...params, seed: params.seed === undefined ? undefined : params.seed + i}},
      prompt: p,
      indices: [p * n + i]
    }));
  });
}

function tooManyRuns(request: InferenceRequest, runs: number, slots: number): ApiError {
  if (!request.batch) return invalidRequest(`Invalid value for 'n': at most ${slots} (this server's slots).`, "n", "invalid_value");
  return invalidRequest(
    `Invalid value for 'prompt': ${request.batch.length} prompts x n=${request.n} need ${runs} generations at once; this server has ${slots} slots (greedy choices of one prompt share one).`,
    "prompt",
    "invalid_value"
  );
}

/** Runs the generations; a failing one stops the others. Streams text as it comes. */
function generateChoices(
  deps: CompletionHandlerDeps,
  endpoint: Endpoint,
  engine: Engine,
  runs: readonly Run[],
  formatter: ResponseFormatter,
  res: Res,
  sse: SseStream | undefined,
  abort: {signal: AbortSignal; timedOut: () => boolean}
): Promise<GenerationResult[]> {
  const locals = res.locals;
  const stop = new AbortController();
  const signal = AbortSignal.any([abort.signal, stop.signal]);
  const choices = runs.reduce((a, r) => a + r.indices.length, 0);
  let sawText = false;
  const open = () => {
    if (!sse || sse.open || res.destroyed) return;
    sse.start({"X-Request-Id": locals.requestId});
    for (let i = 0; i < choices; i++) for (const c of formatter.opening(i)) sse.send(c);
  };
  const onText = (run: Run) => (piece: string, logprobs?: readonly TokenLogprob[]) => {
    if (!sawText) {
      sawText = true;
      deps.metrics.ttft.observe({endpoint}, (performance.now() - locals.startedAt) / 1000);
    }
    if (sse) for (const i of run.indices) for (const c of formatter.text(piece, i, logprobs)) sse.send(c);
  };
  return Promise.all(
    runs.map((run) =>
      engine.generate(run.request, {tenant: locals.tenant, signal, timedOut: abort.timedOut, onStart: open, onText: onText(run)}).catch((error: unknown) => {
        stop.abort(); // one choice failed (a full queue, say): the others stop too
        throw error;
      })
    )
  );
}

/** The choices as one body, or their closing chunks; usage counts each prompt once. */
function respondChoices(
  deps: CompletionHandlerDeps,
  request: InferenceRequest,
  runs: readonly Run[],
  formatter: ResponseFormatter,
  res: Res,
  sse: SseStream | undefined,
  results: readonly GenerationResult[]
): void {
  const records: CompletionRecord[] = [];
  runs.forEach((run, r) => {
    const result = results[r]!;
    for (const i of run.indices) records[i] = toRecord([result.text], result);
  });
  const total = totalOf(records, request.n);
  deps.metrics.promptTokens.inc(total.promptTokens);
  deps.metrics.completionTokens.inc(results.reduce((a, r) => a + r.completionTokens, 0));
  deps.metrics.responses.inc({source: "generated"});
  Object.assign(res.locals.log, {prompt_tokens: total.promptTokens, completion_tokens: total.completionTokens});
  if (!sse) return void res.json(formatter.choicesBody(records, request.n));
  records.forEach((r, i) => {
    for (const c of formatter.closing(r, i)) sse.send(c);
  });
  if (request.includeUsage) sse.send(formatter.usageChunk(total));
  sse.end();
}
