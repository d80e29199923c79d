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
  /**
   * Bytes a saved state takes per token it holds, as the model's KV cache sizes it (the
   * first saves refine it). A state larger than MAX_STATE_SHARE of the budget is not
   * saved: it would evict most others, or itself at once (a 7B model's 2k-token state
   * passes the default 1 GiB), and its write stalls every slot for longer.
   */
  readonly bytesPerToken: number;
  readonly observer?: PromptCacheObserver | undefined;
  readonly log?: ((message: string) => void) | undefined;
}

/** The largest share of the budget one saved state may take. */
export const MAX_STATE_SHARE = 0.25;

/**
 * What a slot taken for a prompt needs from the cache: save what it holds (its previous
 * owner's state), restore a saved state of the new tenant, both, or (most often) nothing.
 * Pure.
 */
export function planPrepare(input: {held: readonly Token[]; prompt: readonly Token[]; tenant: string; owner: string | undefined; saved: readonly SavedPrompt[]; minTokens: number; maxStateBytes: number; bytesPerToken: number}): {save: boolean; restore: SavedPrompt | undefined} {
  const {held, prompt, tenant, owner, saved, minTokens} = input;
  const save = owner !== undefined && held.length * input.bytesPerToken <= input.maxStateBytes && worthSaving(held, prompt, owner, saved, minTokens);
  // Another tenant's tokens are never this prompt's prefix (issue #26: a side channel).
  const shared = owner === tenant ? commonPrefix(held, prompt) : 0;
  return {save, restore: bestSaved(saved, tenant, prompt, shared, minTokens)};
}

export class PromptCache {
  #saved: SavedPrompt[] = [];
  #nextId = 0;
  #bytesPerToken: number;
  /**
   * Saves and restores, one at a time: they hold the context's lock anyway, and eviction
   * must not delete a file being loaded. A request with nothing to save or restore never
   * joins it (it waited behind every other request's save before).
   */
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly options: PromptCacheOptions
  ) {
    this.#bytesPerToken = options.bytesPerToken;
  }

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
   * Called with a slot just taken for `prompt` on behalf of `tenant` (`owner` filled it),
   * before the prompt is evaluated: saves what the slot would lose, then loads the saved
   * state that holds the most of the prompt, if any. Resolves whether it restored one.
   * Never throws: a failed save is skipped, a failed load leaves the slot empty (the prompt
   * is then evaluated in full).
   */
  prepare(sequence: LlamaContextSequence, prompt: readonly Token[], tenant: string, owner: string | undefined): Promise<boolean> {
    // A copy already (node-llama-cpp slices it): a save keeps it as the state's tokens.
    const held = sequence.contextTokens;
    const plan = this.#plan(held, prompt, tenant, owner);
    if (!plan.save && !plan.restore) return Promise.resolve(false);
    const run = this.#chain.then(() => this.#prepare(sequence, held, prompt, tenant, owner));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #plan(held: readonly Token[], prompt: readonly Token[], tenant: string, owner: string | undefined) {
    const {minTokens, budgetBytes} = this.options;
    return planPrepare({held, prompt, tenant, owner, saved: this.#saved, minTokens, maxStateBytes: budgetBytes * MAX_STATE_SHARE, bytesPerToken: this.#bytesPerToken});
  }

  async #prepare(sequence: LlamaContextSequence, held: Token[], prompt: readonly Token[], tenant: string, owner: string | undefined): Promise<boolean> {
    const {observer} = this.options;
    // Decided again now that earlier saves and evictions are done.
    if (this.#plan(held, prompt, tenant, owner).save) await this.#save(sequence, held, owner!);
    const best = this.#plan(held, prompt, tenant, owner).restore;
    if (!best) return false;
    try {
      await sequence.loadStateFromFile(this.#file(best), {acceptRisk: true});
      best.usedAt = performance.now();
      observer?.onPromptCache("restore");
      return true;
    } catch (error) {
      this.#failed("restore", error);
      this.#forget([best]);
      // The slot's state is unknown after a failed load: start it over.
      await sequence.clearHistory().catch(() => undefined);
      return false;
    }
  }

  async #save(sequence: LlamaContextSequence, held: Token[], tenant: string): Promise<void> {
    const entry = {id: this.#nextId++, tenant, tokens: held, usedAt: performance.now()};
    try {
      const {fileSize} = await sequence.saveStateToFile(this.#file(entry));
      if (held.length > 0) this.#bytesPerToken = fileSize / held.length;
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
