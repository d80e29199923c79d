import {Redis} from "ioredis";
import type {CacheStore} from "./cache-store.js";

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` (TLS) URL; password and database come from it. */
  readonly url: string;
  /** Prefix of every key, e.g. `paddock:<namespace>:`. */
  readonly keyPrefix: string;
  /**
   * Bound on each command, in ms. A slow Redis must never stall generation: past this
   * the lookup is a bypass. Defaults to 50.
   */
  readonly commandTimeoutMs?: number;
  readonly onError?: (error: Error) => void;
}

/**
 * Redis through ioredis, configured to fail fast and heal in the background: no offline
 * queue (commands while disconnected fail at once), no per-command retries, a short
 * command timeout, and endless reconnection with back-off. Callers treat failures as
 * bypasses; this class only reports them.
 */
export class RedisStore implements CacheStore {
  readonly kind = "redis";
  readonly #client: Redis;

  constructor(options: RedisStoreOptions) {
    this.#client = new Redis(options.url, {
      keyPrefix: options.keyPrefix,
      commandTimeout: options.commandTimeoutMs ?? 50,
      connectTimeout: 1_000,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
      // After a failover the old primary answers READONLY: reconnect to find the new one.
      reconnectOnError: (error) => error.message.startsWith("READONLY"),
      lazyConnect: false
    });
    // Without a listener ioredis logs every connection error; the caller counts them instead.
    this.#client.on("error", (error: Error) => options.onError?.(error));
  }

  get status(): string {
    return this.#client.status;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#client.get(key)) ?? undefined;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.#client.set(key, value, "EX", Math.max(1, Math.round(ttlSeconds)));
  }

  async close(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}
