import {ApiError} from "../../inference-image/src/errors.js";
import {chooseSlot, commonPrefix, SlotPool} from "../../inference-image/src/slot-pool.js";

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

  it("takes the slot holding the longest prefix when it covers at least half the prompt, the older one on a tie", () => {
    expect(chooseSlot([0, 900, 400], 1000)).toBe(1);
    expect(chooseSlot([0, 600, 600], 1000)).toBe(1);
    expect(chooseSlot([0, 500], 1000)).toBe(1);
  });

  it("otherwise takes the least recently used slot, so a shared template start does not evict a hot prefix", () => {
    expect(chooseSlot([3, 5, 0], 100)).toBe(0);
    expect(chooseSlot([0, 0], 0)).toBe(0);
  });

  it("hands out the least recently used free slot by default (was the most recent, which evicted the prefix just computed)", async () => {
    const pool = new SlotPool(["a", "b"], 4);
    const first = await pool.acquire();
    pool.release(first);
    expect(await pool.acquire()).toBe("b");
  });
});
