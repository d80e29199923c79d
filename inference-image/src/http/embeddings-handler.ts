import type {Request, Response} from "express";
import {z} from "zod";
import {ApiError, invalidRequest, modelNotFound, unsupportedParameter} from "./errors.js";
import {embeddingsKey} from "./cache/cache-key.js";
import type {HandlerCache} from "./completion-handler.js";
import type {RequestLocals} from "./request-context.js";

/** Inputs per request, as OpenAI bounds them. */
export const MAX_EMBEDDING_INPUTS = 2048;

/** One input: text, or token ids (as OpenAI's clients send pre-tokenized input). */
export type EmbeddingInput = string | readonly number[];

export interface EmbeddingRequest {
  readonly model: string;
  readonly inputs: readonly EmbeddingInput[];
  readonly encoding: "float" | "base64";
  /** Asked-for dimensions; only the model's own is served. */
  readonly dimensions: number | undefined;
}

const token = z.number().int().min(0);
const schema = z.strictObject({
  model: z.string().min(1),
  input: z.union([
    z.string().min(1, "must not be empty"),
    z.array(z.string().min(1, "must not be empty")).min(1, "must not be empty").max(MAX_EMBEDDING_INPUTS, `may hold at most ${MAX_EMBEDDING_INPUTS} inputs`),
    z.array(token).min(1, "must not be empty"),
    z.array(z.array(token).min(1, "must not be empty")).min(1, "must not be empty").max(MAX_EMBEDDING_INPUTS, `may hold at most ${MAX_EMBEDDING_INPUTS} inputs`)
  ]),
  encoding_format: z.enum(["float", "base64"]).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: z.string().optional()
});

/** Parses a `/v1/embeddings` body; throws ApiError(400) naming the field. */
export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalidRequest("The request body must be a JSON object.", null, "invalid_body");
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    if (issue.code === "unrecognized_keys") throw invalidRequest(`Unrecognized request argument supplied: ${issue.keys[0]}`, issue.keys[0] ?? null, "unknown_parameter");
    const param = issue.path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("") || null;
    throw invalidRequest(`Invalid value for '${param}': ${issue.code === "invalid_union" ? "expected a string, an array of strings, an array of token ids or an array of such arrays" : issue.message}.`, param, "invalid_value");
  }
  const {input} = r.data;
  const inputs: EmbeddingInput[] = typeof input === "string" ? [input] : typeof input[0] === "number" ? [input as number[]] : (input as EmbeddingInput[]);
  return {model: r.data.model, inputs, encoding: r.data.encoding_format ?? "float", dimensions: r.data.dimensions ?? undefined};
}

/** Scales a vector to unit length, as OpenAI's embeddings are (a zero vector stays zero). */
export function normalize(vector: readonly number[]): number[] {
  const norm = Math.hypot(...vector);
  return norm === 0 ? [...vector] : vector.map((v) => v / norm);
}

/** OpenAI's base64 encoding: the float32 values, little-endian. */
export function toBase64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString("base64");
}

/** What the handler needs of the engine. */
export interface Embedder {
  readonly modelName: string;
  readonly embeddingSize: number;
  embed(inputs: readonly EmbeddingInput[], signal: AbortSignal): Promise<{vectors: number[][]; promptTokens: number}>;
}

/** Serves `POST /v1/embeddings`; with a cache, identical inputs of a tenant are embedded once. */
export function createEmbeddingsHandler(engine: () => Embedder, cache?: HandlerCache) {
  return async (req: Request, res: Response<unknown, RequestLocals>): Promise<void> => {
    let handled!: () => void;
    res.locals.handled = new Promise<void>((resolve) => (handled = resolve));
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.on("close", onClose);
    try {
      const e = engine();
      const request = parseEmbeddingRequest(req.body);
      if (request.model !== e.modelName) throw modelNotFound(request.model);
      if (request.dimensions !== undefined && request.dimensions !== e.embeddingSize) {
        throw unsupportedParameter("dimensions", `must be ${e.embeddingSize} (this model's embedding size) or absent: shortening embeddings is not supported`);
      }
      const identity = cache?.identity();
      const noStore = /no-store|no-cache/i.test(req.get("cache-control") ?? "");
      const key = cache && cache.mode !== "off" && identity && !noStore ? embeddingsKey(request.inputs, identity, res.locals.tenant) : undefined;
      const hit = key ? await cache!.cache.lookupEmbeddings(key) : undefined;
      res.set("X-Cache", hit ? "HIT" : key ? "MISS" : "BYPASS");
      const {vectors, promptTokens} = hit ?? (await e.embed(request.inputs, abort.signal));
      if (key && !hit) await cache!.cache.saveEmbeddings(key, {vectors, promptTokens});
      Object.assign(res.locals.log, {prompt_tokens: promptTokens, inputs: request.inputs.length});
      res.json({
        object: "list",
        data: vectors.map((v, index) => ({object: "embedding", index, embedding: request.encoding === "base64" ? toBase64(normalize(v)) : normalize(v)})),
        model: e.modelName,
        usage: {prompt_tokens: promptTokens, total_tokens: promptTokens}
      });
    } catch (error) {
      if (error instanceof ApiError || !abort.signal.aborted) throw error;
    } finally {
      res.off("close", onClose);
      handled();
    }
  };
}
