import {ApiError} from "../../inference-image/src/errors.js";
import {SlotPool} from "../../inference-image/src/slot-pool.js";

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
