import {bestSaved, planPrepare, supersededBy, toEvict, worthSaving, type SavedPrompt} from "../../inference-image/src/engine/prompt-cache.js";
import type {Token} from "node-llama-cpp";

const toks = (...n: number[]) => n as Token[];
const range = (from: number, to: number) => toks(...Array.from({length: to - from}, (_, i) => from + i));
const saved = (id: number, tenant: string, tokens: Token[], bytes = 100, usedAt = id): SavedPrompt => ({id, tenant, tokens, bytes, usedAt});

describe("prompt cache decisions", () => {
  it("saves what a slot would lose when it is at least minTokens", () => {
    const held = range(0, 100);
    expect(worthSaving(held, range(0, 10), "a", [], 64)).toBe(true);
    // The new prompt continues what the slot holds: nothing is lost.
    expect(worthSaving(held, range(0, 150), "a", [], 64)).toBe(false);
    // Only 40 tokens would go.
    expect(worthSaving(held, range(0, 60), "a", [], 64)).toBe(false);
  });

  it("does not save a state its tenant already has saved whole (a restored slot that did not grow)", () => {
    const held = range(0, 100);
    expect(worthSaving(held, toks(), "a", [saved(1, "a", range(0, 120))], 64)).toBe(false);
    expect(worthSaving(held, toks(), "b", [saved(1, "a", range(0, 120))], 64)).toBe(true);
  });

  it("drops the saved states of a tenant that a longer one contains", () => {
    const older = saved(1, "a", range(0, 50));
    const other = saved(2, "b", range(0, 50));
    const diverging = saved(3, "a", toks(0, 1, 99));
    expect(supersededBy(range(0, 100), "a", [older, other, diverging])).toEqual([older]);
  });

  it("restores the tenant's state sharing the longest prefix, when it saves minTokens more than the slot", () => {
    const prompt = range(0, 300);
    const short = saved(1, "a", range(0, 100));
    const long = saved(2, "a", [...range(0, 250), ...toks(9999)]);
    const others = saved(3, "b", range(0, 300));
    expect(bestSaved([short, long, others], "a", prompt, 0, 32)).toBe(long);
    expect(bestSaved([short, long, others], "b", prompt, 0, 32)).toBe(others);
    // The slot already holds 230 of the prompt: 250 is not worth a load at minTokens 32.
    expect(bestSaved([short, long], "a", prompt, 230, 32)).toBeUndefined();
    expect(bestSaved([short, long], "c", prompt, 0, 32)).toBeUndefined();
  });

  it("evicts the least recently used states until the rest fit", () => {
    const a = saved(1, "a", toks(1), 400, 30);
    const b = saved(2, "a", toks(2), 400, 10);
    const c = saved(3, "a", toks(3), 400, 20);
    expect(toEvict([a, b, c], 1200)).toEqual([]);
    expect(toEvict([a, b, c], 1000)).toEqual([b]);
    expect(toEvict([a, b, c], 300)).toEqual([b, c, a]);
  });

  describe("what a slot taken for a prompt needs (planPrepare)", () => {
    const base = {minTokens: 64, maxStateBytes: 1_000_000, bytesPerToken: 1000, saved: [] as SavedPrompt[]};

    it("nothing, most often: the slot already holds the prompt's start, or too little to keep (no wait for others' saves)", () => {
      expect(planPrepare({...base, held: range(0, 100), prompt: range(0, 150), tenant: "a", owner: "a"})).toEqual({save: false, restore: undefined});
      expect(planPrepare({...base, held: range(0, 10), prompt: range(500, 600), tenant: "a", owner: "a"})).toEqual({save: false, restore: undefined});
    });

    it("skips a state larger than the share of the budget one may take (it would evict the rest, or itself)", () => {
      expect(planPrepare({...base, held: range(0, 900), prompt: range(5000, 5010), tenant: "a", owner: "a"}).save).toBe(true);
      expect(planPrepare({...base, held: range(0, 1001), prompt: range(5000, 5010), tenant: "a", owner: "a"}).save).toBe(false);
    });

    it("restores a saved state of the same tenant only, and never counts another tenant's slot as a shared prefix", () => {
      const mine = saved(1, "a", range(0, 300));
      expect(planPrepare({...base, saved: [mine], held: range(0, 10), prompt: range(0, 250), tenant: "a", owner: "b"}).restore).toBe(mine);
      expect(planPrepare({...base, saved: [mine], held: range(0, 10), prompt: range(0, 250), tenant: "b", owner: "a"}).restore).toBeUndefined();
      // The slot holds 240 of the prompt, but another tenant's: the saved state is worth loading.
      expect(planPrepare({...base, saved: [mine], held: range(0, 240), prompt: range(0, 250), tenant: "a", owner: "c"}).restore).toBe(mine);
    });
  });
});
