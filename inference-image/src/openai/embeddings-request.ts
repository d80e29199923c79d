import {z} from "zod";
import {invalidRequest} from "../core/errors.js";
import type {EmbeddingInput} from "../core/generation.js";
import {formatPath} from "./request-fields.js";

/** `/v1/embeddings`: the request, and the vector encodings OpenAI returns. Pure. */

/** Inputs per request, as OpenAI bounds them. */
export const MAX_EMBEDDING_INPUTS = 2048;

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
    const param = formatPath(issue.path) || null;
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

