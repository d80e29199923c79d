import {randomUUID} from "node:crypto";
import express, {type NextFunction, type Request, type Response} from "express";
import {PATHS} from "../../../contract/index.js";
import type {Logger} from "../../../contract/log.js";
import type {HandlerCache} from "../cache/handler-cache.js";
import {ApiError, internalError, invalidRequest, modelNotFound, notFound, unavailable} from "../core/errors.js";
import type {Engine} from "../core/generation.js";
import type {Endpoint} from "../core/request.js";
import {OPEN_TENANT} from "../core/tenant.js";
import type {ServerMetrics} from "../metrics.js";
import {parseChatRequest} from "../openai/chat-request.js";
import {parseCompletionRequest, parseGenerateRequest} from "../openai/completion-request.js";
import type {ApiKeys} from "./api-keys.js";
import {createCompletionHandler} from "./completion-handler.js";
import {createEmbeddingsHandler} from "./embeddings-handler.js";
import {FlightRegistry} from "./flight.js";
import type {RequestLocals} from "./request-context.js";

/** What the lifecycle changes under the app: the model once loaded, and draining on SIGTERM. */
export interface ServingState {
  readonly engine: Engine | undefined;
  readonly draining: boolean;
}

export interface AppDeps {
  /** Served id, known before the model has loaded. */
  readonly modelName: string;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  readonly state: ServingState;
  /** Absent = no authentication (every caller is the same tenant). */
  readonly apiKeys?: ApiKeys | undefined;
  readonly requestTimeoutMs: number;
  readonly maxRequestBytes: number;
  /** Include prompt text in request logs. Defaults to false. */
  readonly logPrompts?: boolean;
  /** Response cache; absent = every response is a BYPASS. */
  readonly cache?: HandlerCache | undefined;
  /** Unix seconds the server started, reported as `created` in `/v1/models`. */
  readonly modelCreated: number;
}

type Res = Response<unknown, RequestLocals>;

/** Path -> endpoint label; anything else is not an inference request. */
const INFERENCE_ROUTES: Record<string, Endpoint | "embeddings"> = {
  "/v1/chat/completions": "chat",
  "/v1/completions": "completions",
  "/generate": "generate",
  "/v1/embeddings": "embeddings"
};

/** Builds the HTTP app; sockets, signals and the model are the caller's. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use(requestContext(deps));
  addProbes(app, deps);
  addApi(app, deps);
  app.use((req: Request) => {
    throw notFound(`${req.method} ${req.path}`);
  });
  app.use(errorHandler(deps));
  return app;
}

/** Every request's id, clock, tenant and log fields; an inference request is logged and counted once it is done. */
function requestContext(deps: AppDeps) {
  return (req: Request, res: Res, next: NextFunction) => {
    const header = req.get("x-request-id");
    res.locals.requestId = header && /^[\w.-]{1,128}$/.test(header) ? header : randomUUID().replaceAll("-", "");
    res.locals.startedAt = performance.now();
    res.locals.tenant = OPEN_TENANT;
    res.locals.log = {};
    res.set("X-Request-Id", res.locals.requestId);
    const endpoint = INFERENCE_ROUTES[req.path];
    // Logged once the handler is done too: after a disconnect, generation still has to stop.
    if (endpoint) res.on("close", () => void (res.locals.handled ?? Promise.resolve()).then(() => finishInference(deps, endpoint, res)));
    next();
  };
}

/** One log line, and the request metrics, per inference request. */
function finishInference(deps: AppDeps, endpoint: Endpoint | "embeddings", res: Res): void {
  const seconds = (performance.now() - res.locals.startedAt) / 1000;
  // 499: the client closed the connection before the response was complete (nginx's convention).
  const status = res.locals.log["outcome"] === "client_closed" || !res.writableFinished ? 499 : res.statusCode;
  deps.metrics.requests.inc({endpoint, status: String(status)});
  deps.metrics.duration.observe({endpoint}, seconds);
  deps.logger.info("request", {
    id: res.locals.requestId,
    endpoint,
    status,
    tenant: res.locals.tenant,
    duration_ms: Math.round(seconds * 10_000) / 10,
    ...res.locals.log
  });
}

/** Liveness, readiness and metrics: unauthenticated, for the kubelet and Prometheus. */
function addProbes(app: express.Express, {state, metrics, modelName}: AppDeps): void {
  app.get(PATHS.healthz, (_req, res) => {
    res.json({status: "ok"});
  });
  app.get(PATHS.readyz, (_req, res) => {
    if (state.draining) res.status(503).json({status: "draining"});
    else if (!state.engine) res.status(503).json({status: "loading"});
    else res.json({status: "ready", model: modelName});
  });
  app.get(PATHS.metrics, async (_req, res) => {
    if (state.engine) {
      const memory = await state.engine.memory();
      metrics.modelMemory.set({device: "ram"}, memory.ram);
      metrics.modelMemory.set({device: "vram"}, memory.vram);
      metrics.slots.set(state.engine.slots.size);
    }
    res.set("Content-Type", metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}

/** The OpenAI API (and the seed's /generate): authenticated, refused while loading or draining. */
function addApi(app: express.Express, deps: AppDeps): void {
  const {state, modelName} = deps;
  const authenticate = (req: Request, res: Res, next: NextFunction) => {
    if (deps.apiKeys) res.locals.tenant = deps.apiKeys.authenticate(req.get("authorization"));
    next();
  };
  const refuseUnlessServing = (_req: Request, res: Res, next: NextFunction) => {
    if (state.draining) {
      res.set("Connection", "close");
      throw unavailable("The server is shutting down; retry on another replica.");
    }
    if (!state.engine) throw unavailable("The model is still loading.", 5);
    next();
  };
  // Any content type is read as JSON: `curl -d` sends form encoding by default.
  const json = express.json({limit: deps.maxRequestBytes, type: () => true, strict: true});

  app.get("/v1/models", authenticate, (_req, res) => {
    res.json({object: "list", data: [modelCard(modelName, deps.modelCreated)]});
  });
  app.get("/v1/models/:id", authenticate, (req, res) => {
    if (req.params["id"] !== modelName) throw modelNotFound(String(req.params["id"]));
    res.json(modelCard(modelName, deps.modelCreated));
  });

  const handlerDeps = {
    engine: () => state.engine!,
    metrics: deps.metrics,
    logger: deps.logger,
    requestTimeoutMs: deps.requestTimeoutMs,
    cache: deps.cache,
    flights: new FlightRegistry(),
    logPrompts: deps.logPrompts ?? false
  };
  const parsers = {chat: parseChatRequest, completions: parseCompletionRequest, generate: parseGenerateRequest};
  for (const [path, endpoint] of Object.entries(INFERENCE_ROUTES)) {
    if (endpoint === "embeddings") app.post(path, authenticate, refuseUnlessServing, json, createEmbeddingsHandler({engine: () => state.engine!, cache: deps.cache, metrics: deps.metrics, requestTimeoutMs: deps.requestTimeoutMs}));
    else app.post(path, authenticate, refuseUnlessServing, json, createCompletionHandler(handlerDeps, endpoint, parsers[endpoint]));
  }
}

/** The one place errors become HTTP responses. */
function errorHandler({logger, metrics}: AppDeps) {
  return (error: unknown, req: Request, res: Res, _next: NextFunction) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500 && apiError.code === "internal_error") {
      logger.error("unhandled error", {id: res.locals.requestId, path: req.path, error: String(error)});
    }
    if (INFERENCE_ROUTES[req.path]) {
      metrics.rejected.inc({reason: rejectionReason(apiError)});
      res.locals.log.error = apiError.code;
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (apiError.retryAfterSeconds !== undefined) res.set("Retry-After", String(apiError.retryAfterSeconds));
    res.status(apiError.status).json(apiError.toBody());
  };
}

function modelCard(id: string, created: number) {
  return {id, object: "model", created, owned_by: "paddock"};
}

/** Maps body-parser's errors and anything unexpected to API errors. */
function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const e = error as {type?: string; status?: number};
  if (e.type === "entity.too.large") return new ApiError(413, "invalid_request_error", "request_too_large", "The request body is too large.");
  if (e.type === "entity.parse.failed") return invalidRequest("The request body is not valid JSON.", null, "invalid_json");
  if (e.type === "encoding.unsupported" || e.type === "charset.unsupported") return invalidRequest("Unsupported request encoding.", null, "unsupported_encoding");
  if (e.status === 400) return invalidRequest("The request could not be read.", null, "bad_request");
  return internalError();
}

function rejectionReason(error: ApiError): string {
  if (error.code === "queue_full") return "queue_full";
  if (error.code === "unavailable") return "draining";
  if (error.code === "queue_timeout") return "queue_timeout";
  if (error.status === 401) return "unauthorized";
  if (error.status >= 500) return "error";
  return "invalid";
}
