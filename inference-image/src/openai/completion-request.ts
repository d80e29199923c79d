import {z} from "zod";
import {invalidRequest, unsupportedParameter} from "../core/errors.js";
import type {InferenceRequest, ResponseFormat} from "../core/request.js";
import {common, parseWith, rejectUnsupported, samplingParams} from "./request-fields.js";

/** `/v1/completions` and the seed's `/generate` into the internal request. Pure. */

const completionSchema = z.strictObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string())]),
  echo: z.unknown().optional(),
  best_of: z.unknown().optional(),
  suffix: z.unknown().optional()
});

const generateSchema = z.strictObject({
  prompt: z.string(),
  max_tokens: z.number().int().min(1).optional(),
  temperature: z.number().min(0).max(2).optional(),
  seed: z.number().int().optional()
});

const TEXT: ResponseFormat = {kind: "text"};

/** Parses a `/v1/completions` body. Without `max_tokens`, 16 tokens, as OpenAI does. */
export function parseCompletionRequest(body: unknown): InferenceRequest {
  const r = parseWith(completionSchema, body);
  rejectUnsupported(r);
  let text: string;
  if (typeof r.logprobs === "boolean") throw invalidRequest("Invalid value for 'logprobs': must be an integer 0-5 in completions (the alternatives per token).", "logprobs", "invalid_value");
  if (typeof r.prompt === "string") text = r.prompt;
  else if (r.prompt.length === 1 && r.prompt[0] !== undefined) text = r.prompt[0];
  else throw unsupportedParameter("prompt", "must be a string or an array of exactly one string (batched prompts are not supported)");
  return {
    ...(typeof r.logprobs === "number" ? {logprobs: {top: r.logprobs}} : {}),
    endpoint: "completions",
    model: r.model,
    prompt: {kind: "text", text},
    params: samplingParams(r, r.max_tokens ?? 16),
    stream: r.stream ?? false,
    includeUsage: r.stream_options?.include_usage ?? false,
    format: TEXT,
    n: r.n ?? 1
  };
}

/** Parses the seed's `POST /generate {prompt}` body: a plain completion, greedy unless told otherwise. */
export function parseGenerateRequest(body: unknown): InferenceRequest {
  const r = parseWith(generateSchema, body);
  return {
    endpoint: "generate",
    model: undefined,
    prompt: {kind: "text", text: r.prompt},
    params: samplingParams({temperature: r.temperature ?? 0, seed: r.seed}, r.max_tokens ?? 256),
    stream: false,
    includeUsage: false,
    format: TEXT,
    n: 1
  };
}

