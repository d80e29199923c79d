import {createHash} from "node:crypto";
import type {InferenceRequest} from "../core/request.js";

/** Bumped whenever the encoding below changes, so old entries are never read as new ones. */
export const CACHE_KEY_VERSION = 2;

/** Everything about the served model that changes its output. */
export interface ModelIdentity {
  readonly name: string;
  /** sha256 of the model file: a new model never serves an old model's answers. */
  readonly digest: string;
  /** The chat template in use: the same messages render to different prompts under another. */
  readonly chatWrapper: string;
  /** Tokens per slot: generation without max_tokens runs until the context is full. */
  readonly contextSize: number;
}

/**
 * The cache key of a request: sha256 over a canonical encoding of the model identity,
 * the tenant, the endpoint, the prompt, the response format and every sampling parameter. `stream`, `user`,
 * JSON key order and whitespace never reach it, since it is built from the parsed,
 * normalized request, not from the body.
 */
export function cacheKey(request: InferenceRequest, model: ModelIdentity, tenant: string): string {
  const {params} = request;
  const material = {
    v: CACHE_KEY_VERSION,
    model,
    tenant,
    endpoint: request.endpoint,
    prompt: request.prompt,
    // The translated schema: two spellings the grammar enforces alike share an entry.
    format: request.format,
    n: request.n,
    tools: request.tools ?? null,
    logprobs: request.logprobs ?? null,
    params: {
      temperature: params.temperature,
      topP: params.topP,
      topK: params.topK,
      minP: params.minP,
      seed: params.seed ?? null,
      maxTokens: params.maxTokens ?? null,
      stop: params.stop,
      presencePenalty: params.presencePenalty,
      frequencyPenalty: params.frequencyPenalty,
      logitBias: params.logitBias
    }
  };
  return createHash("sha256").update(canonicalJson(material)).digest("hex");
}

/** The cache key of an embeddings request: the model, the tenant and the inputs. */
export function embeddingsKey(inputs: ReadonlyArray<string | readonly number[]>, model: ModelIdentity, tenant: string): string {
  return createHash("sha256").update(canonicalJson({v: CACHE_KEY_VERSION, kind: "embeddings", model, tenant, inputs})).digest("hex");
}

/** JSON with object keys sorted at every level, so equal values always encode equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
