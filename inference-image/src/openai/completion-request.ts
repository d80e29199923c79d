import {z} from "zod";
import {invalidRequest} from "../core/errors.js";
import type {InferenceRequest, Prompt, ResponseFormat} from "../core/request.js";
import {common, parseWith, rejectUnsupported, samplingParams} from "./request-fields.js";

/** `/v1/completions` and the seed's `/generate` into the internal request. Pure. */

const completionSchema = z.strictObject({
  ...common,
  // As the spec allows: a string, token ids, or a batch of either.
  prompt: z.union([z.string(), z.array(z.string()).min(1, "must not be empty"), z.array(z.number().int().min(0)).min(1, "must not be empty"), z.array(z.array(z.number().int().min(0)).min(1, "must not be empty")).min(1, "must not be empty")]),
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
  if (typeof r.logprobs === "boolean") throw invalidRequest("Invalid value for 'logprobs': must be an integer 0-5 in completions (the alternatives per token).", "logprobs", "invalid_value");
  const prompts = promptsOf(r.prompt);
  const [first] = prompts as [Prompt, ...Prompt[]];
  return {
    ...(prompts.length > 1 ? {batch: prompts} : {}),
    ...(typeof r.logprobs === "number" ? {logprobs: {top: r.logprobs}} : {}),
    endpoint: "completions",
    model: r.model,
    prompt: first,
    params: samplingParams(r, r.max_tokens ?? 16),
    stream: r.stream ?? false,
    includeUsage: r.stream_options?.include_usage ?? false,
    format: TEXT,
    n: r.n ?? 1
  };
}

/** The prompts of a legacy completion: a string, token ids, or a batch of either. */
function promptsOf(prompt: string | string[] | number[] | number[][]): Prompt[] {
  if (typeof prompt === "string") return [{kind: "text", text: prompt}];
  if (typeof prompt[0] === "number") return [{kind: "tokens", tokens: prompt as number[]}];
  return (prompt as Array<string | number[]>).map((p) => (typeof p === "string" ? {kind: "text", text: p} : {kind: "tokens", tokens: p}));
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

