import {WorkQueue, type Timers} from "../../operator/src/controller/work-queue.js";

/** A fake clock: the queue's back-off is tested without waiting. */
function fakeTimers() {
  let now = 0;
  const pending: Array<{at: number; fn: () => void; id: number}> = [];
  let id = 0;
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      pending.push({at: now + ms, fn, id: ++id});
      return id;
    },
    clearTimeout: (h) => {
      const i = pending.findIndex((p) => p.id === h);
      if (i >= 0) pending.splice(i, 1);
    }
  };
  const advance = (ms: number) => {
    now += ms;
    for (const p of pending.filter((p) => p.at <= now)) {
      pending.splice(pending.indexOf(p), 1);
      p.fn();
    }
  };
  return {timers, advance};
}

describe("WorkQueue", () => {
  it("de-duplicates keys waiting in the queue", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    q.add("a");
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
  });

  it("never hands out a key being processed; one added meanwhile comes back after done", async () => {
    const q = new WorkQueue();
    q.add("a");
    const key = await q.get();
    q.add("a");
    expect(q.depth).toBe(0);
    q.done(key!);
    expect(q.depth).toBe(1);
    expect(await q.get()).toBe("a");
  });

  it("wakes a waiting worker when a key arrives", async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add("x");
    expect(await next).toBe("x");
  });

  it("backs off failures exponentially, capped, and forgets after success", () => {
    const {timers, advance} = fakeTimers();
    const q = new WorkQueue({baseDelayMs: 100, maxDelayMs: 1_000, timers});
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited("k"))).toEqual([100, 200, 400, 800, 1_000]);
    q.forget("k");
    advance(100);
    expect(q.depth).toBe(1);
    expect(q.addRateLimited("other")).toBe(100);
  });

  it("adds delayed keys when their time comes", () => {
    const {timers, advance} = fakeTimers();
    const q = new WorkQueue({timers});
    q.addAfter("k", 5_000);
    advance(4_999);
    expect(q.depth).toBe(0);
    advance(1);
    expect(q.depth).toBe(1);
  });

  it("releases waiting workers on shutdown and drops delayed keys", async () => {
    const {timers, advance} = fakeTimers();
    const q = new WorkQueue({timers});
    const waiting = q.get();
    q.addAfter("k", 10);
    q.shutDown();
    expect(await waiting).toBeUndefined();
    advance(10);
    expect(q.depth).toBe(0);
  });
});
