import {queueFull, queueTimeout, unavailable} from "../core/errors.js";
import type {SlotPoolObserver} from "../core/observers.js";

interface Waiter<T> {
  resolve(slot: T): void;
  reject(error: Error): void;
}

/** What a free slot holds, measured against a new prompt. */
export interface SlotFit {
  /** Tokens of the prompt already in the slot's KV cache (common prefix). */
  shared: number;
  /** Tokens the slot holds in all. */
  held: number;
}

/**
 * Which free slot a prompt takes; `fits` are ordered least recently used first. Taking a
 * slot saves evaluating its shared tokens but throws away the rest of what it holds, which
 * another request may want back (a repeated prompt, a conversation's next turn). The least
 * recently used slot is the one whose loss matters least, so it is the default; another
 * slot wins only by what it saves beyond the default, less what it throws away. With a shared
 * system prompt every slot saves the same and the oldest goes; a conversation's slot saves
 * its whole history and loses nothing; a prompt sharing only the chat template's first
 * tokens (or a near-duplicate's first words) never evicts a slot worth keeping. The older
 * slot wins a tie. Pure.
 */
export function chooseSlot(fits: readonly SlotFit[]): number {
  if (fits.length === 0) return 0;
  const base = fits[0]!.shared;
  let best = 0;
  let bestGain = 0;
  for (let i = 1; i < fits.length; i++) {
    const {shared, held} = fits[i]!;
    const gain = shared - base - (held - shared);
    if (gain > bestGain) {
      best = i;
      bestGain = gain;
    }
  }
  return best;
}

/** How many leading tokens two sequences share. */
export function commonPrefix<T>(a: readonly T[], b: readonly T[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Hands each request a free slot (a context sequence) or queues it in a bounded FIFO.
 *
 * A full queue rejects at once with 429 so clients back off instead of piling up; an
 * aborted waiter (client gone, timeout) leaves the queue immediately so it never
 * takes a slot it cannot use. Knows nothing of llama.cpp: slots are opaque values.
 */
export class SlotPool<T> {
  readonly #free: T[];
  readonly #waiters: Waiter<T>[] = [];
  readonly #size: number;
  #closed = false;

  constructor(
    slots: readonly T[],
    /** Waiters allowed beyond the busy slots. */
    private readonly maxQueue: number,
    private readonly observer: SlotPoolObserver = {onChange: () => {}},
    /** Seconds suggested in `Retry-After` when the queue is full. Defaults to 1. */
    private readonly retryAfterSeconds = 1
  ) {
    this.#free = [...slots];
    this.#size = slots.length;
  }

  get size(): number {
    return this.#size;
  }

  get busy(): number {
    return this.#size - this.#free.length;
  }

  get queued(): number {
    return this.#waiters.length;
  }

  /**
   * Resolves with a slot. Rejects with 429 when the queue is full, with 503 once the pool
   * is closed, and with the signal's reason (or a queue timeout) when `signal` aborts first.
   * `pick` chooses among the free slots (least recently used first; see chooseSlot) and
   * defaults to the least recently used. A queued request takes whichever slot frees first:
   * waiting longer for "its" slot is not worth the queueing by default.
   */
  acquire(signal?: AbortSignal, pick?: (free: readonly T[]) => number): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable("The server is shutting down."));
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#free.length > 0) {
      const index = pick ? pick(this.#free) : 0;
      const [slot] = this.#free.splice(index >= 0 && index < this.#free.length ? index : 0, 1) as [T];
      this.#report();
      return Promise.resolve(slot);
    }
    if (this.#waiters.length >= this.maxQueue) return Promise.reject(queueFull(this.retryAfterSeconds));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        this.#report();
        reject(abortReason(signal!));
      };
      const waiter: Waiter<T> = {
        resolve: (s) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(s);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        }
      };
      signal?.addEventListener("abort", onAbort, {once: true});
      this.#waiters.push(waiter);
      this.#report();
    });
  }

  /** Returns a slot: the oldest waiter gets it directly, so FIFO order holds; else it is the most recently used free slot. */
  release(slot: T): void {
    const next = this.#waiters.shift();
    if (next) next.resolve(slot);
    else this.#free.push(slot);
    this.#report();
  }

  /** Refuses new acquisitions; requests already queued keep their place and still get slots. */
  close(): void {
    this.#closed = true;
  }

  #report(): void {
    this.observer.onChange({busy: this.busy, queued: this.queued});
  }
}

/** A timeout signal's reason becomes a 503 queue timeout; a client abort keeps its own reason. */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof DOMException && reason.name === "TimeoutError") return queueTimeout(1);
  return reason instanceof Error ? reason : new Error(String(reason));
}
