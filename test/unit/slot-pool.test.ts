import {ApiError} from "../../inference-image/src/core/errors.js";
import {chooseSlot, commonPrefix, SlotPool} from "../../inference-image/src/engine/slot-pool.js";

describe("SlotPool", () => {
  it("hands out free slots, then queues in FIFO order", async () => {
    const pool = new SlotPool(["a", "b"], 2);
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(new Set([a, b])).toEqual(new Set(["a", "b"]));
    const order: string[] = [];
    const first = pool.acquire().then((s) => order.push(`first:${s}`));
    const second = pool.acquire().then((s) => order.push(`second:${s}`));
    expect(pool.queued).toBe(2);
    pool.release(a);
    pool.release(b);
    await Promise.all([first, second]);
    expect(order).toEqual([`first:${a}`, `second:${b}`]);
  });

  it("rejects with 429 and Retry-After at once when the queue is full", async () => {
    const pool = new SlotPool(["a"], 1);
    await pool.acquire();
    void pool.acquire();
    const error = await pool.acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({status: 429, code: "queue_full", retryAfterSeconds: 1});
  });

  it("drops an aborted waiter from the queue so it never takes a slot", async () => {
    const pool = new SlotPool(["a"], 4);
    const held = await pool.acquire();
    const controller = new AbortController();
    const abandoned = pool.acquire(controller.signal);
    const next = pool.acquire();
    controller.abort(new Error("client left"));
    await expect(abandoned).rejects.toThrow("client left");
    expect(pool.queued).toBe(1);
    pool.release(held);
    await expect(next).resolves.toBe("a");
  });

  it("turns a deadline into a 503 queue timeout", async () => {
    const pool = new SlotPool(["a"], 4);
    await pool.acquire();
    await expect(pool.acquire(AbortSignal.timeout(5))).rejects.toMatchObject({status: 503, code: "queue_timeout"});
    expect(pool.queued).toBe(0);
  });

  it("reports busy and queued counts on every change", async () => {
    const seen: Array<{busy: number; queued: number}> = [];
    const pool = new SlotPool(["a"], 4, {onChange: (s) => seen.push(s)});
    const a = await pool.acquire();
    const waiting = pool.acquire();
    pool.release(a);
    pool.release(await waiting);
    expect(seen).toEqual([
      {busy: 1, queued: 0},
      {busy: 1, queued: 1},
      {busy: 1, queued: 0},
      {busy: 0, queued: 0}
    ]);
  });

  it("refuses new work once closed but serves those already queued", async () => {
    const pool = new SlotPool(["a"], 4);
    const a = await pool.acquire();
    const queued = pool.acquire();
    pool.close();
    await expect(pool.acquire()).rejects.toMatchObject({status: 503});
    pool.release(a);
    await expect(queued).resolves.toBe("a");
  });
});

describe("prefix-aware slot choice", () => {
  it("measures common prefixes", () => {
    expect(commonPrefix([1, 2, 3, 4], [1, 2, 9])).toBe(2);
    expect(commonPrefix([], [1])).toBe(0);
    expect(commonPrefix([5, 6], [5, 6])).toBe(2);
  });

  // Fits are [shared, held], least recently used first.
  const fits = (...pairs: Array<[number, number]>) => pairs.map(([shared, held]) => ({shared, held}));

  it("takes the slot that saves the most of the prompt, the older one on a tie", () => {
    // A conversation's next turn: its slot holds the whole history.
    expect(chooseSlot(fits([0, 0], [900, 920], [400, 1100]))).toBe(1);
    expect(chooseSlot(fits([0, 50], [600, 600], [600, 600]))).toBe(1);
    // A slot that saves more than another, though it throws more away.
    expect(chooseSlot(fits([0, 0], [400, 500], [300, 300]))).toBe(1);
  });

  it("keeps the least recently used when every slot holds the same prefix (a shared system prompt)", () => {
    expect(chooseSlot(fits([1000, 1040], [1000, 1030], [1000, 1060]))).toBe(0);
  });

  it("does not evict a slot for a prompt that shares only its first tokens", () => {
    // The chat template's start.
    expect(chooseSlot(fits([3, 40], [5, 1200], [0, 0]))).toBe(0);
    // A near-duplicate: taking the slot would save 2 tokens and lose its other 28.
    expect(chooseSlot(fits([27, 59], [29, 57], [27, 60]))).toBe(0);
    expect(chooseSlot([])).toBe(0);
  });

  it("hands out the least recently used free slot by default (was the most recent, which evicted the prefix just computed)", async () => {
    const pool = new SlotPool(["a", "b"], 4);
    const first = await pool.acquire();
    pool.release(first);
    expect(await pool.acquire()).toBe("b");
  });
});
