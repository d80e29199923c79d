import {z} from "zod";
import {ApiError, invalidRequest, unsupportedParameter} from "../core/errors.js";
import type {SamplingParams} from "../core/request.js";

/**
 * What the generating endpoints share: their common fields with OpenAI's ranges, the
 * fields accepted only with a neutral value, sampling defaults, and turning zod's issues
 * into OpenAI's 400 bodies naming the field. Pure.
 */

const stop = z.union([z.string(), z.array(z.string()).max(4, "may hold at most 4 sequences")]).nullish();
const penalty = z.number().min(-2).max(2).nullish();

/** Fields every generating endpoint accepts, with OpenAI's ranges. */
export const common = {
  model: z.string().min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(0).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  stop,
  presence_penalty: penalty,
  frequency_penalty: penalty,
  stream: z.boolean().nullish(),
  // include_obfuscation pads chunks against side channels; nothing to pad here, nothing changes.
  stream_options: z.strictObject({include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional()}).nullish(),
  user: z.string().optional(),
  n: z.number().int().min(1).max(128).nullish(),
  logprobs: z.union([z.boolean(), z.number().int().min(0).max(5)]).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, "keys must be token ids"), z.number().min(-100).max(100)).nullish(),
  // Accepted and ignored: none changes the output. store/metadata ask OpenAI to keep the
  // completion for its dashboard (nothing is stored here); service_tier picks a price and
  // latency class; prompt_cache_key and safety_identifier are routing and abuse hints.
  store: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  service_tier: z.enum(["auto", "default", "flex", "scale", "priority"]).nullish(),
  prompt_cache_key: z.string().nullish(),
  // Prompt-cache policy hints for OpenAI's own cache (retention, TTL): this server keeps
  // slot states by its own budget (PROMPT_CACHE_BYTES), so they change nothing.
  prompt_cache_retention: z.enum(["in_memory", "24h"]).nullish(),
  prompt_cache_options: z.looseObject({}).nullish(),
  // Accepted only as null: this server runs no moderation (see rejectUnsupported).
  moderation: z.unknown().optional(),
  safety_identifier: z.string().nullish(),
  verbosity: z.unknown().optional(),
  web_search_options: z.unknown().optional()
};

/**
 * Known OpenAI fields this server does not implement. Each is accepted only with its
 * neutral value, so a client never gets a silently different behaviour.
 */
const unsupported: ReadonlyArray<[field: string, isNeutral: (v: unknown) => boolean, why: string]> = [
  ["functions", (v) => v == null, "is not supported: this server has no function calling"],
  ["function_call", (v) => v == null || v === "none", "is not supported: this server has no function calling"],
  ["modalities", (v) => v == null || (Array.isArray(v) && v.every((m) => m === "text")), "is not supported except [\"text\"]"],
  ["audio", (v) => v == null, "is not supported"],
  ["reasoning_effort", (v) => v == null, "is not supported"],
  ["verbosity", (v) => v == null, "is not supported: this model has no verbosity setting"],
  ["web_search_options", (v) => v == null, "is not supported: this server does not search the web"],
  ["moderation", (v) => v == null, "is not supported: this server runs no moderation"],
  ["echo", (v) => v == null || v === false, "is not supported"],
  ["best_of", (v) => v == null || v === 1, "must be 1"],
  ["suffix", (v) => v == null, "is not supported: this model has no infill"]
];


export interface SamplingFields {
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  top_k?: number | null | undefined;
  min_p?: number | null | undefined;
  seed?: number | null | undefined;
  stop?: string | string[] | null | undefined;
  presence_penalty?: number | null | undefined;
  frequency_penalty?: number | null | undefined;
  logit_bias?: Record<string, number> | null | undefined;
}

/** OpenAI's defaults: temperature 1, top_p 1, no penalties; top_k 0 and min_p 0 disable those samplers. */
export function samplingParams(r: SamplingFields, maxTokens: number | undefined): SamplingParams {
  return {
    temperature: r.temperature ?? 1,
    topP: r.top_p ?? 1,
    topK: r.top_k ?? 0,
    minP: r.min_p ?? 0,
    seed: r.seed ?? undefined,
    maxTokens,
    stop: r.stop == null ? [] : (typeof r.stop === "string" ? [r.stop] : r.stop).filter((s) => s.length > 0),
    presencePenalty: r.presence_penalty ?? 0,
    frequencyPenalty: r.frequency_penalty ?? 0,
    logitBias: Object.entries(r.logit_bias ?? {})
      .map(([token, bias]) => [Number(token), bias] as const)
      .filter(([, bias]) => bias !== 0)
      .sort((a, b) => a[0] - b[0])
  };
}

export function rejectUnsupported(r: Record<string, unknown>): void {
  for (const [field, isNeutral, why] of unsupported) {
    if (field in r && !isNeutral(r[field])) throw unsupportedParameter(field, why);
  }
  // As OpenAI answers it: stream options without a stream are a mistake, not a no-op.
  if (r["stream_options"] != null && r["stream"] !== true) throw invalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", "invalid_value");
}

/** Parses a request body, or (with `at`) the part of one at that path, which errors then name. */
export function parseWith<T extends z.ZodType>(schema: T, body: unknown, at?: string): z.infer<T> {
  if (!isObject(body)) throw invalidRequest("The request body must be a JSON object.", null, "invalid_body");
  // reportInput: tells a missing field (input undefined) from a wrong one in the issue.
  const result = schema.safeParse(body, {reportInput: true});
  if (result.success) return result.data;
  throw toApiError(result.error, at);
}

/** The first issue decides the message; its path becomes OpenAI's `param`. */
function toApiError(error: z.ZodError, at?: string): ApiError {
  const first = error.issues[0]!;
  const issue = at === undefined ? first : {...first, path: [at, ...first.path]};
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    const prefix = issue.path.length > 0 ? `${formatPath(issue.path)}.` : "";
    return invalidRequest(`Unrecognized request argument supplied: ${prefix}${key}`, `${prefix}${key}`, "unknown_parameter");
  }
  const param = formatPath(issue.path);
  if (issue.input === undefined) {
    return invalidRequest(`Missing required parameter: '${param}'.`, param, "missing_required_parameter");
  }
  const message = issue.code === "invalid_union" ? unionMessage(issue) : issue.message;
  return invalidRequest(`Invalid value for '${param}': ${message}.`, param, "invalid_value");
}

/**
 * A union fails as a whole; the useful reason is the branch that matched the input's type
 * but broke a rule (e.g. `stop` as an array of 5), else the list of accepted types.
 */
function unionMessage(issue: z.core.$ZodIssueInvalidUnion): string {
  const specific = issue.errors.flat().find((i) => i.code !== "invalid_type");
  if (specific) return specific.message;
  const got = issue.input === null ? "null" : Array.isArray(issue.input) ? "array" : typeof issue.input;
  const expected = [...new Set(issue.errors.flat().map((i) => (i.code === "invalid_type" ? i.expected : i.code)))];
  return `expected ${expected.join(" or ")}, received ${got}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
