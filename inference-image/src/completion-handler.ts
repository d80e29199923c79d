import type {Request, Response} from "express";
import type {Engine, GenerationResult} from "./engine.js";
import {ApiError, internalError, modelNotFound} from "./errors.js";
import type {Logger} from "./logger.js";
import type {ServerMetrics} from "./metrics.js";
import type {Endpoint, InferenceRequest} from "./openai-request.js";
import {ResponseFormatter, type CompletionRecord} from "./responses.js";
import {SseStream} from "./sse.js";
import type {RequestLocals} from "./request-context.js";

export interface CompletionHandlerDeps {
  /** The loaded engine; routes refuse requests before it exists. */
  readonly engine: () => Engine;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /** Upper bound on one request, queueing included, in ms. */
  readonly requestTimeoutMs: number;
}

/** Thrown into the abort signal when the client goes away; never sent anywhere. */
class ClientGoneError extends Error {
  constructor() {
    super("client disconnected");
    this.name = "ClientGoneError";
  }
}

/**
 * Serves one generating endpoint. Parsing errors surface before any slot is taken; a
 * stream opens only once a slot is held, so 429/503 keep their status codes; a client
 * that disconnects aborts its generation, which frees the slot within one token.
 */
export function createCompletionHandler(
  deps: CompletionHandlerDeps,
  endpoint: Endpoint,
  parse: (body: unknown) => InferenceRequest
) {
  const {metrics} = deps;
  return async (req: Request, res: Response<unknown, RequestLocals>): Promise<void> => {
    let handled!: () => void;
    res.locals.handled = new Promise<void>((resolve) => (handled = resolve));
    try {
      await serve(req, res);
    } finally {
      handled();
    }
  };

  async function serve(req: Request, res: Response<unknown, RequestLocals>): Promise<void> {
    const engine = deps.engine();
    const request = parse(req.body);
    if (request.model !== undefined && request.model !== engine.modelName) throw modelNotFound(request.model);
    const locals = res.locals;
    locals.log.stream = request.stream;

    const client = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) client.abort(new ClientGoneError());
    };
    res.on("close", onClose);
    const deadline = AbortSignal.timeout(deps.requestTimeoutMs);
    const signal = AbortSignal.any([client.signal, deadline]);

    const formatter = new ResponseFormatter(endpoint, engine.modelName, locals.requestId, Math.floor(Date.now() / 1000), request.includeUsage);
    const sse = request.stream ? new SseStream(res) : undefined;
    const chunks: string[] = [];
    metrics.active.inc();
    try {
      let result: GenerationResult;
      try {
        result = await engine.generate(request, {
          signal,
          timedOut: () => deadline.aborted,
          onStart: () => {
            if (!sse) return;
            sse.start({"X-Request-Id": locals.requestId});
            for (const c of formatter.opening()) sse.send(c);
          },
          onFirstToken: () => {
            const ttft = (performance.now() - locals.startedAt) / 1000;
            metrics.ttft.observe({endpoint}, ttft);
            locals.log.ttft_ms = round(ttft * 1000);
          },
          onText: (piece) => {
            chunks.push(piece);
            sse?.send(formatter.text(piece));
          }
        });
      } catch (error) {
        if (error instanceof ClientGoneError) {
          locals.log.outcome = "client_closed";
          return;
        }
        if (sse?.open) {
          // Headers are gone: the error becomes the stream's last event.
          const apiError = error instanceof ApiError ? error : internalError();
          if (!(error instanceof ApiError)) deps.logger.error("generation failed", {id: locals.requestId, error: String(error)});
          locals.log.error = apiError.code;
          sse.fail(apiError);
          return;
        }
        throw error;
      }

      metrics.promptTokens.inc(result.promptTokens);
      metrics.completionTokens.inc(result.completionTokens);
      Object.assign(locals.log, {
        prompt_tokens: result.promptTokens,
        completion_tokens: result.completionTokens,
        finish_reason: result.finishReason,
        stop_cause: result.stopCause,
        queue_ms: round(result.queueMs)
      });
      if (result.stopCause === "aborted") {
        locals.log.outcome = "client_closed";
        return;
      }

      const record: CompletionRecord = {
        chunks,
        finishReason: result.finishReason,
        promptTokens: result.promptTokens,
        completionTokens: result.completionTokens
      };
      if (sse) {
        for (const c of formatter.closing(record)) sse.send(c);
        sse.end();
      } else {
        res.json(formatter.body(record));
      }
    } finally {
      metrics.active.dec();
      res.off("close", onClose);
    }
  }
}

const round = (n: number) => Math.round(n * 10) / 10;
