import {jest} from "@jest/globals";
import {LeaderElector, type LeaseClient} from "../../operator/src/controller/leader-election.js";
import {KubeApiError} from "../../operator/src/kube/kube-client.js";

/**
 * Two electors over one Lease, in simulated time (jest's fake timers and clock). The Lease
 * store stands in for the API server: it keeps resourceVersions, answers 409 to a stale
 * replace, and can refuse one instance's writes (403), as a revoked RBAC grant or a
 * partition from the API server would. The operator-level version of this, with real
 * processes and the API server's audit log, is in test/integration/operator.test.ts.
 */
type Lease = {metadata: {name: string; namespace: string; resourceVersion?: string}; spec: Record<string, unknown>};

function store() {
  let lease: Lease | undefined;
  let version = 0;
  const refused = new Set<string>();
  const client = (identity: string): LeaseClient => ({
    get: async <T>() => structuredClone(lease) as T | undefined,
    create: async <T>(obj: object) => {
      if (refused.has(identity)) throw new KubeApiError(403, "Forbidden", "leases is forbidden");
      if (lease) throw new KubeApiError(409, "AlreadyExists", "exists");
      lease = {...(structuredClone(obj) as Lease), metadata: {...(obj as Lease).metadata, resourceVersion: String(++version)}};
      return lease as T;
    },
    replace: async <T>(obj: object) => {
      if (refused.has(identity)) throw new KubeApiError(403, "Forbidden", "leases is forbidden");
      if ((obj as Lease).metadata.resourceVersion !== lease?.metadata.resourceVersion) throw new KubeApiError(409, "Conflict", "stale");
      lease = {...(structuredClone(obj) as Lease), metadata: {...(obj as Lease).metadata, resourceVersion: String(++version)}};
      return lease as T;
    }
  });
  return {client, refuse: (identity: string) => refused.add(identity)};
}

describe("leader election", () => {
  beforeEach(() => jest.useFakeTimers({now: Date.parse("2026-12-01T00:00:00Z")}));
  afterEach(() => jest.useRealTimers());

  const elector = (s: ReturnType<typeof store>, identity: string) =>
    new LeaderElector(s.client(identity), {namespace: "ops", name: "leader", identity, leaseDurationSeconds: 15});

  it("a leader that cannot renew stops acting at the renew deadline, before anyone else can lead", async () => {
    const s = store();
    const a = elector(s, "a");
    const b = elector(s, "b");
    const lost: Array<{at: number; why: string}> = [];
    let bElectedAt: number | undefined;
    a.run(() => {}, (why) => lost.push({at: Date.now(), why}));
    await jest.advanceTimersByTimeAsync(100);
    b.run(() => (bElectedAt = Date.now()), () => {});
    await jest.advanceTimersByTimeAsync(5_000);
    expect([a.mayAct(), b.mayAct()]).toEqual([true, false]);

    const cut = Date.now();
    s.refuse("a");
    for (let t = 0; t < 30_000; t += 100) {
      await jest.advanceTimersByTimeAsync(100);
      expect(a.mayAct() && b.mayAct()).toBe(false);
    }
    expect(lost).toHaveLength(1);
    expect(lost[0]!.why).toMatch(/no successful renewal/);
    // A stops within its 10 s renew deadline; B leads only once the 15 s lease has run out.
    expect(lost[0]!.at - cut).toBeLessThanOrEqual(10_000);
    expect(bElectedAt! - cut).toBeGreaterThan(13_000);
    expect(bElectedAt!).toBeGreaterThan(lost[0]!.at);
    expect(b.mayAct()).toBe(true);
  });

  it("a leader whose renewals go through keeps leading, and the follower keeps following", async () => {
    const s = store();
    const a = elector(s, "a");
    const b = elector(s, "b");
    const following: string[] = [];
    a.run(() => {}, () => {});
    await jest.advanceTimersByTimeAsync(100);
    new LeaderElector(s.client("b"), {namespace: "ops", name: "leader", identity: "b", onFollowing: (h) => following.push(h)}).run(() => {}, () => {});
    await jest.advanceTimersByTimeAsync(60_000);
    expect([a.mayAct(), b.mayAct()]).toEqual([true, false]);
    expect(following).toEqual(["a"]);
  });

  it("hands the lease over at once on release", async () => {
    const s = store();
    const a = elector(s, "a");
    const b = elector(s, "b");
    let bElectedAt: number | undefined;
    a.run(() => {}, () => {});
    await jest.advanceTimersByTimeAsync(100);
    b.run(() => (bElectedAt = Date.now()), () => {});
    await jest.advanceTimersByTimeAsync(1_000);
    const released = Date.now();
    await a.release();
    expect(a.mayAct()).toBe(false);
    await jest.advanceTimersByTimeAsync(3_000);
    expect(bElectedAt! - released).toBeLessThanOrEqual(2_100);
  });
});
