import type {Response} from "express";
import {ApiError, internalError} from "../core/errors.js";
import type {GenerationResult} from "../core/generation.js";
import type {CompletionRecord} from "../core/record.js";
import type {Endpoint, InferenceRequest} from "../core/request.js";
import type {ResponseFormatter} from "../openai/responses.js";
import type {Flight} from "./flight.js";
import type {CompletionHandlerDeps} from "./handler-deps.js";
import type {RequestLocals} from "./request-context.js";
import {SseStream} from "./sse.js";

type Res = Response<unknown, RequestLocals>;

/** A generation that ran to its natural end; only these are cached. */
export const isComplete = (r: GenerationResult) => r.stopCause === "eos" || r.stopCause === "stop_sequence" || r.stopCause === "max_tokens";

/** What the formatter renders and the cache stores, from a result and the text pieces streamed. */
export const toRecord = (chunks: readonly string[], r: GenerationResult): CompletionRecord => ({
  ...(r.logprobs ? {logprobs: r.logprobs} : {}),
  ...(r.toolCalls ? {toolCalls: r.toolCalls} : {}),
  chunks: [...chunks],
  finishReason: r.finishReason,
  promptTokens: r.promptTokens,
  cachedTokens: r.cachedTokens,
  completionTokens: r.completionTokens
});

/** The result's fields in the request's log line. */
const logResult = (locals: RequestLocals, result: GenerationResult) =>
  Object.assign(locals.log, {
    prompt_tokens: result.promptTokens,
    completion_tokens: result.completionTokens,
    finish_reason: result.finishReason,
    stop_cause: result.stopCause,
    queue_ms: Math.round(result.queueMs * 10) / 10
  });

/**
 * Renders a flight to this response, as a stream or one body; resolves when done. A stream
 * opens only once a slot is held, so 429/503 keep their status codes; a client that leaves
 * detaches, and the last one to leave stops the generation.
 */
export function followFlight(deps: CompletionHandlerDeps, endpoint: Endpoint, flight: Flight, joined: boolean, request: InferenceRequest, formatter: ResponseFormatter, res: Res): Promise<void> {
  const {metrics} = deps;
  const locals = res.locals;
  const sse = request.stream ? new SseStream(res) : undefined;
  let sawText = false;
  return new Promise<void>((resolve, reject) => {
    let detach = () => false;
    const onClose = () => {
      if (res.writableFinished) return;
      locals.log.outcome = "client_closed";
      // The last client to leave stops the generation; its log line waits for that (one token).
      if (detach()) flight.done.then((r) => logResult(locals, r), () => {}).finally(resolve);
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
      onText: (piece, logprobs) => {
        if (!sawText) {
          sawText = true;
          const ttft = (performance.now() - locals.startedAt) / 1000;
          metrics.ttft.observe({endpoint}, ttft);
          locals.log.ttft_ms = Math.round(ttft * 10_000) / 10;
        }
        if (sse) for (const c of formatter.text(piece, 0, logprobs)) sse.send(c);
      },
      onEnd: (result) => {
        logResult(locals, result);
        if (result.stopCause === "aborted" || res.destroyed) {
          locals.log.outcome = "client_closed";
          return finish();
        }
        metrics.responses.inc({source: joined ? "coalesced" : "generated"});
        const record = toRecord(flight.chunks, result);
        if (sse) {
          for (const c of formatter.ending(record)) sse.send(c);
          sse.end();
        } else res.json(formatter.body(record));
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
