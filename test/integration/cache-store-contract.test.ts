import {MemoryStore} from "../../inference-image/src/cache/memory-store.js";
import type {CacheStore} from "../../inference-image/src/cache/cache-store.js";
import {RedisStore} from "../../inference-image/src/cache/redis-store.js";
import {RedisProcess} from "../../dev/processes/redis.js";
import {sleep} from "../../dev/processes/server.js";

/** One contract, every store: the memory LRU and Redis (a real redis-server). */
describe.each([
  ["memory", async () => ({store: new MemoryStore(1024 * 1024) as CacheStore, stop: async () => {}})],
  [
    "redis",
    async () => {
      const redis = await RedisProcess.start();
      const store = new RedisStore({url: redis.url, keyPrefix: "contract:", commandTimeoutMs: 500});
      await waitConnected(store);
      return {store: store as CacheStore, stop: () => redis.stop()};
    }
  ]
])("%s cache store contract", (_name, make) => {
  let store: CacheStore;
  let stop: () => Promise<void>;
  beforeAll(async () => ({store, stop} = await make()));
  afterAll(async () => {
    await store.close();
    await stop();
  });

  it("misses an unknown key", async () => {
    expect(await store.get("nope")).toBeUndefined();
  });

  it("returns what was stored, byte for byte (unicode included)", async () => {
    const value = JSON.stringify({text: "Once upon a time ☃ 🦙", n: 1});
    await store.set("k1", value, 60);
    expect(await store.get("k1")).toBe(value);
  });

  it("replaces an existing value", async () => {
    await store.set("k2", "first", 60);
    await store.set("k2", "second", 60);
    expect(await store.get("k2")).toBe("second");
  });

  it("expires entries after their TTL", async () => {
    await store.set("k3", "short-lived", 1);
    expect(await store.get("k3")).toBe("short-lived");
    await sleep(1_100);
    expect(await store.get("k3")).toBeUndefined();
  });
});

async function waitConnected(store: RedisStore): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (store.status !== "ready") {
    if (Date.now() > deadline) throw new Error(`redis store not ready: ${store.status}`);
    await sleep(10);
  }
}
