/** Timer functions, injectable so tests can run the queue on a fake clock. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout)
};

export interface WorkQueueOptions {
  /** First retry delay after a failure. Defaults to 250 (ms). */
  readonly baseDelayMs?: number;
  /** Longest retry delay. Defaults to 60_000 (ms). */
  readonly maxDelayMs?: number;
  readonly timers?: Timers;
  readonly onDepthChange?: (depth: number) => void;
}

/**
 * A work queue with client-go's semantics: a key is queued at most once; a key is never
 * processed by two workers at once (added while in progress, it is processed again after);
 * failures back off exponentially per key; `forget` resets that after a success.
 */
export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  /** Added while processing: re-queue when done. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #delayed = new Map<string, unknown>();
  readonly #waiters: Array<(key: string | undefined) => void> = [];
  readonly #timers: Timers;
  #shutDown = false;

  constructor(private readonly options: WorkQueueOptions = {}) {
    this.#timers = options.timers ?? realTimers;
  }

  get depth(): number {
    return this.#queue.length;
  }

  add(key: string): void {
    if (this.#shutDown) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#queued.delete(key);
      this.#processing.add(key);
      waiter(key);
    } else {
      this.#queue.push(key);
      this.options.onDepthChange?.(this.#queue.length);
    }
  }

  /** Adds `key` after `ms`; an earlier pending delay for it is kept if sooner. */
  addAfter(key: string, ms: number): void {
    if (this.#shutDown || this.#delayed.has(key)) return;
    const handle = this.#timers.setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    this.#delayed.set(key, handle);
  }

  /** Re-adds a failed key after its back-off: base * 2^failures, capped. */
  addRateLimited(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.min(this.options.maxDelayMs ?? 60_000, (this.options.baseDelayMs ?? 250) * 2 ** failures);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Next key to process; resolves `undefined` after shutdown. Call `done(key)` when finished. */
  get(): Promise<string | undefined> {
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#queued.delete(key);
      this.#processing.add(key);
      this.options.onDepthChange?.(this.#queue.length);
      return Promise.resolve(key);
    }
    if (this.#shutDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.delete(key)) this.add(key);
  }

  /** Stops handing out keys; pending delays are dropped. */
  shutDown(): void {
    this.#shutDown = true;
    for (const handle of this.#delayed.values()) this.#timers.clearTimeout(handle);
    this.#delayed.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
  }
}
