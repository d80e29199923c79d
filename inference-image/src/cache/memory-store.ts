import type {CacheStore} from "./cache-store.js";

interface Entry {
  value: string;
  bytes: number;
  expiresAt: number;
}

/**
 * In-process LRU bounded in bytes (UTF-8 size of key and value), with per-entry TTL.
 * The default store when no Redis is configured: one replica's cache, lost on restart.
 */
export class MemoryStore implements CacheStore {
  readonly kind = "memory";
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(
    /** Upper bound on stored bytes. */
    private readonly maxBytes: number,
    private readonly now: () => number = Date.now,
    private readonly onSizeChange: (bytes: number) => void = () => {}
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  async get(key: string): Promise<string | undefined> {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.#remove(key, entry);
      return undefined;
    }
    // Map order is insertion order: re-inserting marks the entry most recently used.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    const bytes = Buffer.byteLength(key) + Buffer.byteLength(value);
    const old = this.#entries.get(key);
    if (old) this.#remove(key, old);
    if (bytes > this.maxBytes || ttlSeconds <= 0) return;
    for (const [k, e] of this.#entries) {
      if (this.#bytes + bytes <= this.maxBytes) break;
      this.#remove(k, e);
    }
    this.#entries.set(key, {value, bytes, expiresAt: this.now() + ttlSeconds * 1000});
    this.#bytes += bytes;
    this.onSizeChange(this.#bytes);
  }

  async close(): Promise<void> {
    this.#entries.clear();
    this.#bytes = 0;
    this.onSizeChange(0);
  }

  #remove(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    this.onSizeChange(this.#bytes);
  }
}
