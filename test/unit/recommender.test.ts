import {deletionCosts, persistable, rawRecommendation, recommend, restore, type Load, type ScalingPolicy, type Window} from "../../operator/src/autoscaler/recommender.js";

// Simulated time: the recommender takes the clock as a parameter, so these tests replay
// minutes of load in microseconds. Nothing is mocked.
const policy: ScalingPolicy = {min: 1, max: 10, targetActiveRequests: 4, scaleDownDelaySeconds: 300};
const ok = (activeRequests: number, extra: Partial<Load & {ok: true}> = {}): Load => ({ok: true, activeRequests, complete: true, source: "test", ...extra});
const gap: Load = {ok: false, reason: "PrometheusUnavailable", message: "Prometheus at http://p is unreachable: ECONNREFUSED"};

interface Run {
  /** Replicas after each evaluation, one per interval. */
  readonly replicas: number[];
  readonly changes: number;
  readonly reasons: string[];
}

/** Evaluates every `intervalS` for `seconds`, with `load(t)` at each step; the Deployment follows at once. */
function simulate(load: (t: number) => Load, seconds: number, options: {intervalS?: number; start?: number; p?: ScalingPolicy; restartAt?: number} = {}): Run {
  const intervalS = options.intervalS ?? 10;
  const p = options.p ?? policy;
  let current = options.start ?? p.min;
  let window: Window = [];
  let stored: Window = [];
  const replicas: number[] = [];
  const reasons: string[] = [];
  let changes = 0;
  for (let t = 0; t < seconds; t += intervalS) {
    // An operator restart: memory is lost; only what was written to status survives.
    if (options.restartAt !== undefined && t === options.restartAt) window = restore(stored, t * 1000);
    const d = recommend(load(t), current, window, p, t * 1000);
    window = d.window;
    stored = persistable(window, stored);
    if (d.replicas !== current) changes++;
    current = d.replicas;
    replicas.push(current);
    reasons.push(d.reason);
  }
  return {replicas, changes, reasons};
}

/** Seconds from `from` until the replicas first reach `value` (undefined if never). */
const reached = (run: Run, value: number, from: number, intervalS = 10) => {
  const i = run.replicas.findIndex((r, k) => k * intervalS >= from && r === value);
  return i < 0 ? undefined : i * intervalS - from;
};

describe("recommender", () => {
  it("recommends ceil(load / target), clamped, and keeps the count within the tolerance band", () => {
    expect(rawRecommendation(0, 3, policy)).toBe(1);
    expect(rawRecommendation(9, 1, policy)).toBe(3);
    expect(rawRecommendation(400, 1, policy)).toBe(10);
    expect(rawRecommendation(4.3, 1, policy)).toBe(1); // 7.5% over the target: within 10%
    expect(rawRecommendation(4.5, 1, policy)).toBe(2);
    expect(rawRecommendation(11.5, 3, policy)).toBe(3); // 4% under
  });

  it("scales a step up at once, by at most x2 or +4 per evaluation", () => {
    const run = simulate((t) => ok(t < 60 ? 2 : 60), 200);
    expect(run.replicas.slice(0, 6)).toEqual([1, 1, 1, 1, 1, 1]);
    // 60 requests / 4 per replica = 15, capped at max 10: 1 -> 5 (+4) -> 10 (x2), one evaluation each.
    expect(run.replicas.slice(6, 10)).toEqual([5, 10, 10, 10]);
    expect(run.reasons[6]).toBe("ScaledUp");
    expect(recommend(ok(60), 1, [], policy, 0).message).toBe("scaling up to 5 (at most x2 or +4 per step, 10 wanted): load 60 active requests (test), target 4 per replica");
  });

  it("scales a step down only after the load stayed low for scaleDownDelaySeconds, in one step", () => {
    const run = simulate((t) => ok(t < 100 ? 30 : 3), 700, {start: 8});
    const downAt = run.replicas.findIndex((r) => r === 1) * 10;
    expect(downAt).toBe(390); // the last high recommendation (t=90) is 300 s old: out of the window
    expect(run.replicas.slice(10, 39).every((r) => r === 8)).toBe(true);
    expect(run.reasons[20]).toBe("ScaleDownDelayed");
    expect(run.changes).toBe(1);
  });

  it("rides out a spike shorter than the window: up fast, down once, no flapping", () => {
    const run = simulate((t) => ok(t >= 100 && t < 130 ? 16 : 1), 900);
    expect(reached(run, 4, 100)).toBe(0); // 1 -> 4 at the first look
    expect(Math.max(...run.replicas)).toBe(4);
    expect(run.changes).toBe(2); // 1 -> 4 -> 1
    expect(run.replicas[(120 + 300) / 10 + 1]).toBe(1);
  });

  it("does not flap on noisy steady load", () => {
    // Load 12 +- 40% (target 4/replica): the raw recommendation jumps between 2 and 5.
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const run = simulate(() => ok(12 * (0.6 + 0.8 * random())), 3600, {start: 3});
    const afterRamp = run.replicas.slice(3);
    const changesAfterRamp = afterRamp.filter((r, i) => i > 0 && r !== afterRamp[i - 1]).length;
    expect(changesAfterRamp).toBe(0);
    expect(run.changes).toBeLessThanOrEqual(2);
  });

  it("holds the current count through a Prometheus gap, and remembers the window across it", () => {
    const run = simulate((t) => (t >= 100 && t < 400 ? gap : ok(t < 100 ? 20 : 0)), 800, {start: 5});
    expect(run.replicas.slice(10, 40).every((r) => r === 5)).toBe(true);
    expect(run.reasons[15]).toBe("PrometheusUnavailable");
    // The last high recommendation was at t=90: by t=400 the window has passed, so down at once.
    expect(run.replicas[40]).toBe(1);
  });

  it("never scales to min on missing data, and explains why it holds", () => {
    const d = recommend(gap, 6, [], policy, 0);
    expect(d.replicas).toBe(6);
    expect(d.active).toBe(false);
    expect(d.message).toBe("Prometheus at http://p is unreachable: ECONNREFUSED; holding 6 replicas");
  });

  it("ranks pods for a scale-down by their in-flight requests, idle ones first", () => {
    const costs = deletionCosts(new Map([["a", 0], ["b", 3], ["c", 0.5]]));
    expect([...costs]).toEqual([["a", "0"], ["b", "300"], ["c", "50"]]);
  });

  it("scales up on incomplete data (a lower bound) but never down", () => {
    expect(recommend(ok(20, {complete: false}), 2, [], policy, 0).replicas).toBe(5);
    const d = recommend(ok(0, {complete: false}), 4, [], {...policy, scaleDownDelaySeconds: 0}, 0);
    expect(d.replicas).toBe(4);
    expect(d.reason).toBe("IncompleteMetrics");
  });

  it("pulls a count outside [min, max] back in, even without data", () => {
    expect(recommend(ok(0), 12, [], policy, 0).replicas).toBe(10);
    expect(recommend(gap, 0, [], {...policy, min: 2}, 0).replicas).toBe(2);
  });

  it("does not scale down early after an operator restart (the window lives in status)", () => {
    const load = (t: number) => ok(t < 200 ? 30 : t < 260 ? 15 : 2);
    const straight = simulate(load, 900, {start: 8});
    for (const restartAt of [210, 250, 270, 400]) {
      const restarted = simulate(load, 900, {start: 8, restartAt});
      const downStraight = straight.replicas.indexOf(1);
      const downRestarted = restarted.replicas.indexOf(1);
      expect(downRestarted).toBeGreaterThanOrEqual(downStraight);
      // ...and at most one window later than without the restart.
      expect(downRestarted - downStraight).toBeLessThanOrEqual(30);
    }
  });

  it("stores the newest window entry with the time it was first reached, so steady load writes nothing", () => {
    let window: Window = [];
    let stored: Window = [];
    const writes: number[] = [];
    for (let t = 0; t < 100; t += 10) {
      window = recommend(ok(12), 3, window, policy, t * 1000).window;
      const next = persistable(window, stored);
      if (JSON.stringify(next) !== JSON.stringify(stored)) writes.push(t);
      stored = next;
    }
    expect(writes).toEqual([0]);
    expect(stored).toEqual([{replicas: 3, time: 0}]);
  });
});
