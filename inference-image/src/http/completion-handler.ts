import type {Request, Response} from "express";
import {modelNotFound} from "../core/errors.js";
import type {Engine, GenerationResult} from "../core/generation.js";
import type {CompletionRecord} from "../core/record.js";
import type {Endpoint, InferenceRequest, Prompt} from "../core/request.js";
import {ResponseFormatter} from "../openai/responses.js";
import {consultCache, type CachePlan} from "./cache-lookup.js";
import {serveChoices} from "./choices.js";
import {Flight} from "./flight.js";
import {followFlight, isComplete, toRecord} from "./follow-flight.js";
import type {CompletionHandlerDeps} from "./handler-deps.js";
import type {RequestLocals} from "./request-context.js";
import {SseStream} from "./sse.js";

export type {CompletionHandlerDeps} from "./handler-deps.js";

type Res = Response<unknown, RequestLocals>;

/**
 * Serves one generating endpoint, in steps: parse, consult the cache, then join or start
 * a generation (a new one, or an identical one already running on this replica) and
 * render it (followFlight), recording what it produced. `n` > 1 goes its own way
 * (choices.ts). Parsing errors surface before any slot is taken.
 */
export function createCompletionHandler(deps: CompletionHandlerDeps, endpoint: Endpoint, parse: (body: unknown) => InferenceRequest) {
  return async (req: Request, res: Res): Promise<void> => {
    let handled!: () => void;
    res.locals.handled = new Promise<void>((resolve) => (handled = resolve));
    deps.metrics.active.inc();
    try {
      await serve(deps, endpoint, parse, req, res);
    } finally {
      deps.metrics.active.dec();
      handled();
    }
  };
}

async function serve(deps: CompletionHandlerDeps, endpoint: Endpoint, parse: (body: unknown) => InferenceRequest, req: Request, res: Res): Promise<void> {
  const engine = deps.engine();
  const request = parse(req.body);
  if (request.model !== undefined && request.model !== engine.modelName) throw modelNotFound(request.model);
  const locals = res.locals;
  locals.log.stream = request.stream;
  if (deps.logPrompts) locals.log.prompt = promptForLog(request.prompt);
  const formatter = new ResponseFormatter(endpoint, engine.modelName, locals.requestId, Math.floor(Date.now() / 1000), request.includeUsage, request.tools);
  if (request.n > 1 || request.batch) return serveChoices(deps, endpoint, engine, request, formatter, res);

  const plan = await consultCache(deps.cache, deps.metrics, request, locals.tenant, req.get("cache-control"));
  res.set("X-Cache", plan.status);
  locals.log.cache = plan.status;
  if (plan.hit) return respondFromCache(deps, plan.hit, request, formatter, res);
  const {flight, joined} = joinOrStart(deps, engine, request, plan, locals.tenant);
  if (joined) locals.log.coalesced = true;
  await followFlight(deps, endpoint, flight, joined, request, formatter, res);
}

/** What prompt logging (LOG_PROMPTS) records of a prompt: the messages, the text, or the token ids. */
function promptForLog(prompt: Prompt): unknown {
  return prompt.kind === "chat" ? prompt.messages : prompt.kind === "text" ? prompt.text : prompt.tokens;
}

/** A stored answer, served without the model: every prompt token counts as cached. */
function respondFromCache(deps: CompletionHandlerDeps, stored: CompletionRecord, request: InferenceRequest, formatter: ResponseFormatter, res: Res): void {
  deps.metrics.responses.inc({source: "cache"});
  const hit = {...stored, cachedTokens: stored.promptTokens};
  Object.assign(res.locals.log, {prompt_tokens: hit.promptTokens, completion_tokens: hit.completionTokens, finish_reason: hit.finishReason});
  if (!request.stream) return void res.json(formatter.body(hit));
  const sse = new SseStream(res);
  sse.start({"X-Request-Id": res.locals.requestId});
  for (const chunk of formatter.allChunks(hit)) sse.send(chunk);
  sse.end();
}

/** Only cacheable requests share a generation: sampled ones must each get their own. */
function joinOrStart(deps: CompletionHandlerDeps, engine: Engine, request: InferenceRequest, plan: CachePlan, tenant: string): {flight: Flight; joined: boolean} {
  const start = () => new Flight(engine, request, deps.requestTimeoutMs, {tenant, finish: (result, chunks) => record(deps, plan, result, chunks)});
  return plan.key ? deps.flights.join(plan.key, start) : {flight: start(), joined: false};
}

/** Counts what a generation produced and stores it (before any response ends: read-your-writes). */
async function record(deps: CompletionHandlerDeps, plan: CachePlan, result: GenerationResult, chunks: readonly string[]): Promise<void> {
  deps.metrics.promptTokens.inc(result.promptTokens);
  deps.metrics.promptCachedTokens.inc(result.cachedTokens);
  deps.metrics.completionTokens.inc(result.completionTokens);
  // ResponseCache.save never throws.
  if (plan.key && plan.store && isComplete(result)) await deps.cache?.cache.save(plan.key, toRecord(chunks, result));
}
