import {z} from "zod";
import type {CompletionRecord} from "../core/record.js";

/**
 * A byte store with per-entry TTL. Implementations: MemoryStore (default) and RedisStore.
 * Both pass test/integration/cache-store-contract.test.ts.
 */
export interface CacheStore {
  readonly kind: "memory" | "redis";
  get(key: string): Promise<string | undefined>;
  /** Stores `value` for `ttlSeconds`; replaces any previous value. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  close(): Promise<void>;
}

/** Bumped when the stored shape changes; entries of another version read as misses. */
const ENTRY_VERSION = 2;

const alternative = z.strictObject({token: z.string(), logprob: z.number(), bytes: z.array(z.number().int())});

const entrySchema = z.strictObject({
  v: z.literal(ENTRY_VERSION),
  chunks: z.array(z.string()),
  finishReason: z.enum(["stop", "length"]),
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  logprobs: z.array(alternative.extend({top: z.array(alternative)})).optional(),
  toolCalls: z.array(z.strictObject({name: z.string(), arguments: z.string()})).optional()
});

export function encodeEntry(record: CompletionRecord): string {
  return JSON.stringify({
    v: ENTRY_VERSION,
    chunks: record.chunks,
    finishReason: record.finishReason,
    promptTokens: record.promptTokens,
    completionTokens: record.completionTokens,
    ...(record.logprobs ? {logprobs: record.logprobs} : {}),
    ...(record.toolCalls ? {toolCalls: record.toolCalls} : {})
  });
}

/** Parses a stored entry; anything malformed or foreign is `undefined` (a miss), never a throw. */
export function decodeEntry(raw: string): CompletionRecord | undefined {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const parsed = entrySchema.safeParse(json);
  if (!parsed.success) return undefined;
  const {chunks, finishReason, promptTokens, completionTokens, logprobs, toolCalls} = parsed.data;
  return {chunks, finishReason, promptTokens, completionTokens, ...(logprobs ? {logprobs} : {}), ...(toolCalls ? {toolCalls} : {})};
}
