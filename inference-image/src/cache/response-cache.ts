import type {CacheObserver} from "../core/observers.js";
import type {CompletionRecord} from "../core/record.js";
import {decodeEntry, encodeEntry, type CacheStore} from "./cache-store.js";

export type LookupResult = {readonly status: "hit"; readonly record: CompletionRecord} | {readonly status: "miss" | "error"};

/**
 * Completed generations by cache key, over any store. Never throws: a failing store
 * makes lookups `error` (the caller bypasses) and writes silent, both counted.
 */
export class ResponseCache {
  constructor(
    readonly store: CacheStore,
    /** Entry lifetime. Defaults to 3600 (s). */
    private readonly ttlSeconds: number,
    private readonly observer: CacheObserver
  ) {}

  async lookup(key: string): Promise<LookupResult> {
    const started = performance.now();
    let raw: string | undefined;
    try {
      raw = await this.store.get(key);
    } catch (error) {
      this.observer.onError("get", error);
      this.observer.onLookup("error", (performance.now() - started) / 1000);
      return {status: "error"};
    }
    // Foreign or corrupt data under our key is a miss; the next completion overwrites it.
    const record = raw === undefined ? undefined : decodeEntry(raw);
    this.observer.onLookup(record ? "hit" : "miss", (performance.now() - started) / 1000);
    return record ? {status: "hit", record} : {status: "miss"};
  }

  async save(key: string, record: CompletionRecord): Promise<void> {
    try {
      await this.store.set(key, encodeEntry(record), this.ttlSeconds);
    } catch (error) {
      this.observer.onError("set", error);
    }
  }

  /** Embeddings by key: deterministic, so they are shared like greedy completions. */
  async lookupEmbeddings(key: string): Promise<EmbeddingsEntry | undefined> {
    const started = performance.now();
    try {
      const raw = await this.store.get(key);
      const entry = raw === undefined ? undefined : decodeEmbeddings(raw);
      this.observer.onLookup(entry ? "hit" : "miss", (performance.now() - started) / 1000);
      return entry;
    } catch (error) {
      this.observer.onError("get", error);
      this.observer.onLookup("error", (performance.now() - started) / 1000);
      return undefined;
    }
  }

  async saveEmbeddings(key: string, entry: EmbeddingsEntry): Promise<void> {
    try {
      await this.store.set(key, JSON.stringify({e: 1, ...entry}), this.ttlSeconds);
    } catch (error) {
      this.observer.onError("set", error);
    }
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

export interface EmbeddingsEntry {
  readonly vectors: number[][];
  readonly promptTokens: number;
}

function decodeEmbeddings(raw: string): EmbeddingsEntry | undefined {
  try {
    const v = JSON.parse(raw) as {e?: unknown; vectors?: unknown; promptTokens?: unknown};
    if (v.e !== 1 || !Array.isArray(v.vectors) || typeof v.promptTokens !== "number") return undefined;
    if (!v.vectors.every((x) => Array.isArray(x) && x.every((n) => typeof n === "number"))) return undefined;
    return {vectors: v.vectors as number[][], promptTokens: v.promptTokens};
  } catch {
    return undefined;
  }
}
