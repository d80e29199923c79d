/**
 * Errors a client can see. Each carries a stable `code`, an HTTP status and the
 * OpenAI error `type`; the app's error handler is the only place that turns them
 * into `{"error":{"message","type","param","code"}}`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    /** Seconds a client should wait before retrying, sent as `Retry-After`. */
    readonly retryAfterSeconds?: number
  ) {
    super(message);
    this.name = "ApiError";
  }

  toBody(): OpenAiErrorBody {
    return {error: {message: this.message, type: this.type, param: this.param, code: this.code}};
  }
}

export interface OpenAiErrorBody {
  error: {message: string; type: string; param: string | null; code: string};
}

export const invalidRequest = (message: string, param: string | null = null, code = "invalid_request") =>
  new ApiError(400, "invalid_request_error", code, message, param);

export const unsupportedParameter = (param: string, why: string) =>
  new ApiError(400, "invalid_request_error", "unsupported_parameter", `'${param}' ${why}`, param);

export const modelNotFound = (model: string) =>
  new ApiError(404, "invalid_request_error", "model_not_found", `The model '${model}' does not exist on this server.`, "model");

export const contextLengthExceeded = (limit: number, requested: number, param: "messages" | "prompt") =>
  new ApiError(
    400,
    "invalid_request_error",
    "context_length_exceeded",
    `This model's maximum context length is ${limit} tokens. However, your ${param} resulted in ${requested} tokens, leaving none to generate.`,
    param
  );

export const unauthorized = (message: string) =>
  new ApiError(401, "invalid_request_error", "invalid_api_key", message);

export const notFound = (path: string) =>
  new ApiError(404, "invalid_request_error", "not_found", `Unknown path: ${path}`);

/** The slot queue is full: retry soon. */
export const queueFull = (retryAfterSeconds: number) =>
  new ApiError(429, "rate_limit_error", "queue_full", "The server is at capacity (all slots busy and the queue is full). Retry shortly.", null, retryAfterSeconds);

/** The server is shutting down or not yet loaded; another replica should take the request. */
export const unavailable = (message: string, retryAfterSeconds = 1) =>
  new ApiError(503, "server_error", "unavailable", message, null, retryAfterSeconds);

export const queueTimeout = (retryAfterSeconds: number) =>
  new ApiError(503, "server_error", "queue_timeout", "Timed out waiting for a free slot.", null, retryAfterSeconds);

export const internalError = () =>
  new ApiError(500, "server_error", "internal_error", "The server failed to process the request.");
