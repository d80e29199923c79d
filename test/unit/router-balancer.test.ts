import {HashRing, leastLoad, prefixHash, walkRing, type Replica} from "../../router/src/balancer.js";
import {ReplicaPool} from "../../router/src/pool.js";
import {replicasFromSlices} from "../../router/src/endpoints.js";
import {affinityKey, requestFacts} from "../../router/src/request-key.js";
import {failureOf, retryableStatus, worthWaiting} from "../../router/src/retry.js";
import {loadRouterConfig} from "../../router/src/config.js";
import {demandIsDue, heldRequests} from "../../operator/src/autoscaler/demand.js";
import {DemandSignal, demandKey, demandValue} from "../../router/src/demand.js";

const replicas = (n: number): Replica[] => Array.from({length: n}, (_, i) => ({name: `chat-${i}`, url: `http://10.0.0.${i}:8000`}));

describe("router: LeastLoad", () => {
  it("takes the replica with the fewest in-flight requests and breaks ties at random", () => {
    const rs = replicas(3);
    expect(leastLoad(rs, new Map([["chat-0", 2], ["chat-1", 0], ["chat-2", 1]]))?.name).toBe("chat-1");
    const picks = new Set(Array.from({length: 200}, () => leastLoad(rs, new Map())!.name));
    expect(picks).toEqual(new Set(["chat-0", "chat-1", "chat-2"]));
    expect(leastLoad([], new Map())).toBeUndefined();
  });
});

describe("router: PrefixHash", () => {
  const keys = Array.from({length: 2000}, (_, i) => `tenant\u0002system prompt ${i}`);

  it("sends a key to the same replica every time while loads allow", () => {
    const rs = replicas(4);
    const ring = new HashRing(rs.map((r) => r.name));
    for (const key of keys.slice(0, 50)) {
      const first = prefixHash(ring, key, rs, new Map(), 1.25)!;
      expect(first.affine).toBe(true);
      expect(prefixHash(ring, key, rs, new Map(), 1.25)!.replica.name).toBe(first.replica.name);
    }
  });

  it("spreads keys evenly, and adding a replica moves only about 1/N of them", () => {
    const four = new HashRing(replicas(4).map((r) => r.name));
    const five = new HashRing(replicas(5).map((r) => r.name));
    const owner = (ring: HashRing, key: string) => ring.walk(key)[0];
    const counts = new Map<string, number>();
    for (const k of keys) counts.set(owner(four, k)!, (counts.get(owner(four, k)!) ?? 0) + 1);
    for (const c of counts.values()) expect(c / keys.length).toBeGreaterThan(0.15);
    const moved = keys.filter((k) => owner(four, k) !== owner(five, k));
    expect(moved.length / keys.length).toBeGreaterThan(0.1);
    expect(moved.length / keys.length).toBeLessThan(0.3);
    // Every moved key went to the new replica: nothing shuffled between the old ones.
    expect(moved.every((k) => owner(five, k) === "chat-4")).toBe(true);
  });

  it("spills to the next replica on the ring when the key's own is over loadFactor x average", () => {
    const rs = replicas(4);
    const ring = new HashRing(rs.map((r) => r.name));
    const key = keys[0]!;
    const own = ring.walk(key)[0]!;
    // 8 in flight on its own replica, none elsewhere: average with this request is 9/4, bound ceil(1.25 * 9 / 4) = 3.
    const spilled = prefixHash(ring, key, rs, new Map([[own, 8]]), 1.25)!;
    expect(spilled.affine).toBe(false);
    expect(spilled.replica.name).toBe(ring.walk(key)[1]);
    // Within the bound it stays: one in flight everywhere, bound ceil(1.25 * 5 / 4) = 2.
    const even = new Map(rs.map((r) => [r.name, 1]));
    expect(prefixHash(ring, key, rs, even, 1.25)).toMatchObject({affine: true, replica: {name: own}});
    // An excluded (already tried) own replica is skipped, and that is not a hit either.
    const without = rs.filter((r) => r.name !== own);
    expect(prefixHash(ring, key, without, new Map(), 1.25)).toMatchObject({affine: false, replica: {name: ring.walk(key)[1]}});
  });
});

describe("router: what it reads of a request", () => {
  it("keys chat on a long system prompt alone, a short one with the first user turn, completions on the prompt, and the tenant", () => {
    const long = "You are a pirate who tells long stories. ".repeat(20);
    const ask = (user: string) => requestFacts({messages: [{role: "system", content: long}, {role: "user", content: user}]}).prefix;
    expect(ask("a")).toBe(ask("b"));
    expect(ask("a")).toContain("pirate");
    const chat = (user: string, later = "") =>
      requestFacts({model: "m", stream: true, messages: [{role: "system", content: "You are a pirate."}, {role: "user", content: user}, {role: "assistant", content: "Arr"}, {role: "user", content: later}]});
    expect(chat("hi")).toMatchObject({model: "m", stream: true});
    expect(chat("hi", "a").prefix).toBe(chat("hi", "b").prefix);
    expect(chat("hi").prefix).not.toBe(chat("ho").prefix);
    expect(requestFacts({prompt: "Once upon a time"}).prefix).toBe("Once upon a time");
    // Token ids key on their ids, never colliding with a text prompt; a batch on its first prompt.
    expect(requestFacts({prompt: [[1, 2, 3], [4]]}).prefix).toBe(requestFacts({prompt: [1, 2, 3]}).prefix);
    expect(requestFacts({prompt: [1, 2, 3]}).prefix).not.toBe(requestFacts({prompt: "1,2,3"}).prefix);
    expect(requestFacts({prompt: [1, 2, 3]}).prefix).not.toBe(requestFacts({prompt: [1, 2, 4]}).prefix);
    expect(requestFacts({prompt: ["a", "b"]}).prefix).toBe("a");
    expect(requestFacts({messages: [{role: "user", content: [{type: "text", text: "parts"}]}]}).prefix).toContain("parts");
    expect(requestFacts("nonsense")).toEqual({model: undefined, stream: false, prefix: ""});
    expect(affinityKey("Bearer a", "p")).not.toBe(affinityKey("Bearer b", "p"));
    expect(affinityKey(undefined, "p")).toBe(affinityKey(undefined, "p"));
  });

  it("retries refused, reset, draining and full replicas, waits for a new one except when queues are full", () => {
    expect(retryableStatus(503)).toBe("draining");
    expect(retryableStatus(429)).toBe("queue_full");
    expect(retryableStatus(400)).toBeUndefined();
    expect(retryableStatus(500)).toBeUndefined();
    expect(failureOf(Object.assign(new Error("x"), {code: "ECONNREFUSED"}))).toBe("connect_error");
    expect(failureOf(Object.assign(new Error("x"), {code: "ECONNRESET"}))).toBe("reset");
    expect(worthWaiting("draining")).toBe(true);
    expect(worthWaiting("queue_full")).toBe(false);
    // A request that already waited for a replica (the service is waking) waits for room too.
    expect(worthWaiting("queue_full", true)).toBe(true);
  });
});

describe("router: replicas from EndpointSlices", () => {
  it("lists ready, not terminating endpoints by pod name, once per address", () => {
    const slice = (endpoints: unknown[]) => ({addressType: "IPv4", ports: [{name: "http", port: 8000}], endpoints}) as never;
    const ep = (ip: string, pod: string, conditions: Record<string, boolean> = {ready: true}) => ({addresses: [ip], conditions, targetRef: {kind: "Pod", name: pod}});
    expect(
      replicasFromSlices([
        slice([ep("10.42.0.3", "b"), ep("10.42.0.2", "a"), ep("10.42.0.4", "c", {ready: false, serving: true, terminating: true}), ep("10.42.0.5", "d", {ready: false})]),
        slice([ep("10.42.0.2", "a")])
      ])
    ).toEqual([
      {name: "a", url: "http://10.42.0.2:8000"},
      {name: "b", url: "http://10.42.0.3:8000"}
    ]);
  });
});

describe("router: configuration", () => {
  it("reads its environment and names the variable that is wrong", () => {
    const base = {MODEL_NAME: "m", ROUTER_NAMESPACE: "ns", ROUTER_ENDPOINTS_SERVICE: "m-replicas"};
    expect(loadRouterConfig(base)).toMatchObject({strategy: "LeastLoad", loadFactor: 1.25, maxHeldRequests: 64, holdTimeoutMs: 600_000, replicas: {kind: "endpointSlices", namespace: "ns", service: "m-replicas"}, demand: undefined});
    expect(loadRouterConfig({MODEL_NAME: "m", ROUTER_STATIC_ENDPOINTS: "http://a:1, http://b:2"}).replicas).toEqual({kind: "static", urls: ["http://a:1", "http://b:2"]});
    expect(() => loadRouterConfig({...base, ROUTER_STRATEGY: "Random"})).toThrow(/^ROUTER_STRATEGY /);
    expect(() => loadRouterConfig({MODEL_NAME: "m"})).toThrow(/ROUTER_ENDPOINTS_SERVICE is required/);
    expect(() => loadRouterConfig({...base, ROUTER_DEMAND_LEASE: "m-demand"})).toThrow(/POD_NAME is required/);
  });
});

describe("router: the ring walk and ejections", () => {
  it("stops walking the ring once every replica is found (it read all replicas x 160 points per request)", () => {
    const ring = new HashRing(["a", "b"]);
    expect(ring.walk("some prompt").sort()).toEqual(["a", "b"]);
    // The same walk over a ring whose reads are counted.
    let reads = 0;
    const owners = Array.from({length: 320}, (_, i) => (i % 2 === 0 ? "a" : "b"));
    const counted = new Proxy(owners, {get: (t, k) => (typeof k === "string" && /^\d+$/.test(k) ? (reads++, t[Number(k)]) : Reflect.get(t, k))});
    const points = Uint32Array.from(owners.map((_, i) => i * 1000));
    expect(walkRing(points, counted, 2, 5_500)).toEqual(["a", "b"]);
    expect(reads).toBe(2);
  });

  it("forgets the ejection of a replica that left the ready set (the map grew with every pod ever ejected)", () => {
    const pool = new ReplicaPool("LeastLoad", 1.25);
    pool.update(replicas(3));
    pool.eject("chat-0");
    pool.eject("chat-1");
    expect(pool.ejected).toEqual(["chat-0", "chat-1"]);
    pool.update(replicas(3).slice(1));
    expect(pool.ejected).toEqual(["chat-1"]);
  });
});

describe("demand Lease: what routers write and the autoscaler reads", () => {
  it("a router writes a growing burst at once, each time the count doubles (it wrote the first request, then nothing for 5 s)", async () => {
    const written: Array<number | undefined> = [];
    const signal = new DemandSignal(async (held) => void written.push(held), () => {});
    for (let held = 1; held <= 100; held++) {
      signal.set(held);
      await Promise.resolve();
    }
    await new Promise((r) => setTimeout(r, 10));
    expect(written.length).toBeLessThanOrEqual(10);
    expect(written.at(-1)).toBeGreaterThanOrEqual(50);
    await signal.stop();
    expect(written.at(-1)).toBeUndefined();
  });

  it("held requests make a service due at once when it is at zero, or when they ask for more replicas than it has", () => {
    expect(demandIsDue(0, 1, 4, 4)).toBe(true);
    // 100 held at a target of 4 want 25 (capped at max 4): one waking replica is not enough.
    expect(demandIsDue(1, 100, 4, 4)).toBe(true);
    expect(demandIsDue(4, 100, 4, 4)).toBe(false);
    expect(demandIsDue(2, 8, 4, 10)).toBe(false);
    expect(demandIsDue(2, 0, 4, 10)).toBe(false);
  });

  it("sums fresh entries of every router and ignores stale or foreign ones", () => {
    const now = Date.parse("2026-12-03T12:00:30Z");
    const annotations = {
      [demandKey("chat-router-a")]: demandValue(3, new Date("2026-12-03T12:00:25Z")),
      [demandKey("chat-router-b")]: demandValue(2, new Date("2026-12-03T12:00:29Z")),
      [demandKey("chat-router-dead")]: demandValue(9, new Date("2026-12-03T11:59:00Z")),
      "kubectl.kubernetes.io/last-applied-configuration": "{}"
    };
    expect(heldRequests(annotations, now)).toBe(5);
    expect(heldRequests(undefined, now)).toBe(0);
    expect(demandKey("x".repeat(80)).split("/")[1]!.length).toBeLessThanOrEqual(63);
  });
});
