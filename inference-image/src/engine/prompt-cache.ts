import {mkdir, mkdtemp, rm} from "node:fs/promises";
import {tmpdir} from "node:os";
import {join} from "node:path";
import type {LlamaContextSequence, Token} from "node-llama-cpp";
import type {PromptCacheObserver} from "../core/observers.js";
import {commonPrefix} from "./slot-pool.js";

/**
 * Saved slot states: what a slot held before a request overwrote it, kept on disk so a
 * prompt that comes back (a conversation's next turn, a repeated prompt) after its slot
 * went to someone else is restored instead of evaluated again. llama-server does the same
 * in memory (`--cache-ram`, on by default). The decisions are pure functions; `PromptCache`
 * is the thin I/O around node-llama-cpp's sequence state files.
 */

/** One saved state. `tokens` are what the slot held: a restored slot holds exactly these. */
export interface SavedPrompt {
  readonly id: number;
  /** Who filled the slot: a state is restored only for the same tenant. */
  readonly tenant: string;
  readonly tokens: readonly Token[];
  readonly bytes: number;
  usedAt: number;
}

/**
 * Whether a slot's state is worth saving before `prompt` replaces it: the tokens it would
 * lose (everything after the prompt's common prefix) are at least `minTokens`, and no saved
 * state of the same tenant already holds them all.
 */
export function worthSaving(held: readonly Token[], prompt: readonly Token[], tenant: string, saved: readonly SavedPrompt[], minTokens: number): boolean {
  if (held.length - commonPrefix(held, prompt) < minTokens) return false;
  return !saved.some((s) => s.tenant === tenant && s.tokens.length >= held.length && commonPrefix(s.tokens, held) === held.length);
}

/** Saved states of `tenant` made redundant by a new one holding `held` (each is a prefix of it). */
export function supersededBy(held: readonly Token[], tenant: string, saved: readonly SavedPrompt[]): SavedPrompt[] {
  return saved.filter((s) => s.tenant === tenant && s.tokens.length <= held.length && commonPrefix(s.tokens, held) === s.tokens.length);
}

/**
 * The saved state of `tenant` sharing the longest prefix with `prompt`, if it holds at least
 * `minTokens` more of it than the slot already does (`alreadyShared`): loading a state costs
 * a file read, worth it only for a real saving.
 */
export function bestSaved(saved: readonly SavedPrompt[], tenant: string, prompt: readonly Token[], alreadyShared: number, minTokens: number): SavedPrompt | undefined {
  let best: SavedPrompt | undefined;
  let bestShared = alreadyShared + minTokens - 1;
  for (const s of saved) {
    if (s.tenant !== tenant) continue;
    const shared = commonPrefix(s.tokens, prompt);
    if (shared > bestShared) {
      best = s;
      bestShared = shared;
    }
  }
  return best;
}

/** Saved states to delete, least recently used first, until the rest fit in `budgetBytes`. */
export function toEvict(saved: readonly SavedPrompt[], budgetBytes: number): SavedPrompt[] {
  let total = saved.reduce((a, s) => a + s.bytes, 0);
  const evicted: SavedPrompt[] = [];
  for (const s of [...saved].sort((a, b) => a.usedAt - b.usedAt)) {
    if (total <= budgetBytes) break;
    evicted.push(s);
    total -= s.bytes;
  }
  return evicted;
}

/** Saved slot states (see docs/inference-server.md "Prompt cache"). */
export interface PromptCacheConfig {
  /** Unset: a new folder under the OS's temporary folder. */
  readonly dir: string | undefined;
  /** Disk the saved states may take; 0 turns the cache off. Defaults to 1 GiB. */
  readonly budgetBytes: number;
  /** A slot state is saved or restored only for at least this many tokens. Defaults to 128. */
  readonly minTokens: number;
}

export interface PromptCacheOptions {
  /** A folder of its own (emptied when the cache opens: states of another process are not trusted); default a new one under the OS's temporary folder. */
  readonly dir: string | undefined;
  readonly budgetBytes: number;
  /** Fewer tokens than this are not worth a file: they are evaluated again quickly. */
  readonly minTokens: number;
  readonly observer?: PromptCacheObserver | undefined;
  readonly log?: ((message: string) => void) | undefined;
}

export class PromptCache {
  #saved: SavedPrompt[] = [];
  #nextId = 0;
  /** Who filled each slot, as far as this cache knows. */
  readonly #owners = new WeakMap<LlamaContextSequence, string>();
  /** One save/restore at a time: they hold the context's lock anyway, and eviction must not delete a file being loaded. */
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly options: PromptCacheOptions
  ) {}

  static async open(options: PromptCacheOptions): Promise<PromptCache> {
    if (options.dir === undefined) return new PromptCache(await mkdtemp(join(tmpdir(), "paddock-prompts-")), options);
    await rm(options.dir, {recursive: true, force: true});
    await mkdir(options.dir, {recursive: true, mode: 0o700});
    return new PromptCache(options.dir, options);
  }

  /** Deletes every saved state (the server is shutting down). */
  async close(): Promise<void> {
    await this.#chain;
    this.#saved = [];
    await rm(this.dir, {recursive: true, force: true});
  }

  get bytes(): number {
    return this.#saved.reduce((a, s) => a + s.bytes, 0);
  }

  /**
   * Called with a slot just taken for `prompt` on behalf of `tenant`, before the prompt is
   * evaluated: saves what the slot would lose, then loads the saved state that holds the
   * most of the prompt, if any. Never throws: a failed save is skipped, a failed load leaves
   * the slot empty (the prompt is then evaluated in full).
   */
  prepare(sequence: LlamaContextSequence, prompt: readonly Token[], tenant: string): Promise<void> {
    const run = this.#chain.then(() => this.#prepare(sequence, prompt, tenant));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #prepare(sequence: LlamaContextSequence, prompt: readonly Token[], tenant: string): Promise<void> {
    const {minTokens, observer} = this.options;
    // A copy already (node-llama-cpp slices it): the save keeps it as the state's tokens.
    const held = sequence.contextTokens;
    const owner = this.#owners.get(sequence);
    this.#owners.set(sequence, tenant);
    if (owner !== undefined && worthSaving(held, prompt, owner, this.#saved, minTokens)) await this.#save(sequence, held, owner);
    const shared = commonPrefix(held, prompt);
    const best = bestSaved(this.#saved, tenant, prompt, shared, minTokens);
    if (!best) return;
    try {
      await sequence.loadStateFromFile(this.#file(best), {acceptRisk: true});
      best.usedAt = performance.now();
      observer?.onPromptCache("restore");
    } catch (error) {
      this.#failed("restore", error);
      this.#forget([best]);
      // The slot's state is unknown after a failed load: start it over.
      await sequence.clearHistory().catch(() => undefined);
    }
  }

  async #save(sequence: LlamaContextSequence, held: Token[], tenant: string): Promise<void> {
    const entry = {id: this.#nextId++, tenant, tokens: held, usedAt: performance.now()};
    try {
      const {fileSize} = await sequence.saveStateToFile(this.#file(entry));
      this.#forget(supersededBy(held, tenant, this.#saved));
      this.#saved.push({...entry, bytes: fileSize});
      this.options.observer?.onPromptCache("save");
      const evicted = toEvict(this.#saved, this.options.budgetBytes);
      evicted.forEach(() => this.options.observer?.onPromptCache("evict"));
      this.#forget(evicted);
      this.options.observer?.onPromptCacheSize(this.bytes);
    } catch (error) {
      this.#failed("save", error);
      await rm(this.#file(entry), {force: true}).catch(() => undefined);
    }
  }

  #forget(entries: readonly SavedPrompt[]): void {
    if (entries.length === 0) return;
    const gone = new Set(entries.map((e) => e.id));
    this.#saved = this.#saved.filter((s) => !gone.has(s.id));
    for (const e of entries) void rm(this.#file(e), {force: true}).catch(() => undefined);
    this.options.observer?.onPromptCacheSize(this.bytes);
  }

  #failed(op: string, error: unknown): void {
    this.options.observer?.onPromptCache("error");
    this.options.log?.(`prompt cache ${op} failed: ${error instanceof Error ? error.message : String(error)}`);
  }

  #file(entry: {id: number}): string {
    return join(this.dir, `${entry.id}.state`);
  }
}
