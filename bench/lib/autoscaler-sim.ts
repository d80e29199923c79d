/**
 * Scalers replayed in simulated time over a load trace (one sample per second): Paddock's
 * recommender and the HPA algorithm with default behaviour. Shared by bench/autoscaler.ts
 * (synthetic traces) and bench/autoscaler-live.ts (a trace recorded live).
 */
import {recommend, type ScalingPolicy, type Window} from "../../operator/src/autoscaler/recommender.js";
import {round} from "./stats.js";

export interface SimulationSettings {
  readonly scrapeSeconds: number;
  readonly min: number;
  readonly max: number;
  readonly target: number;
}

/** `stepAt`: when the load steps up; `stopAt`: when it falls back (for the scale-down time). */
export type Trace = {name: string; load: number[]; stepAt?: number; stopAt?: number};

export interface Scaler {
  readonly name: string;
  readonly intervalS: number;
  decide(observed: number, current: number, t: number): number;
}

/** Paddock's recommender, as the operator's loop drives it. */
export function paddock(s: SimulationSettings, scaleDownDelaySeconds: number, intervalS = 10): Scaler {
  const p: ScalingPolicy = {min: s.min, max: s.max, targetActiveRequests: s.target, scaleDownDelaySeconds};
  let window: Window = [];
  return {
    name: `paddock (window ${scaleDownDelaySeconds}s, every ${intervalS}s)`,
    intervalS,
    decide(observed, current, t) {
      const d = recommend({ok: true, activeRequests: observed, complete: true, source: "trace"}, current, window, p, t * 1000);
      window = d.window;
      return d.replicas;
    }
  };
}

/**
 * The HPA (pkg/controller/podautoscaler) with default behaviour on an AverageValue metric:
 * sync every 15 s, tolerance 0.1, scale-up by max(100%, 4 pods) per 15 s, scale-down to the
 * highest recommendation of the last 300 s, at most 100% per 15 s.
 */
export function hpa(s: SimulationSettings, stabilizationSeconds = 300): Scaler {
  const recs: Array<{t: number; r: number}> = [];
  return {
    name: `HPA defaults (${stabilizationSeconds}s stabilization, every 15s)`,
    intervalS: 15,
    decide(observed, current, t) {
      const ratio = observed / (current * s.target);
      let r = Math.abs(ratio - 1) <= 0.1 ? current : Math.ceil(observed / s.target);
      r = Math.min(s.max, Math.max(s.min, r));
      recs.push({t, r});
      while (recs.length && recs[0]!.t <= t - stabilizationSeconds) recs.shift();
      if (r < current) r = Math.min(current, Math.max(...recs.map((x) => x.r)));
      if (r > current) r = Math.min(r, Math.max(current * 2, current + 4));
      return r;
    }
  };
}

export interface Result {
  trace: string;
  scaler: string;
  reactionS?: number;
  readyForStepS?: number;
  downAfterStopS?: number;
  changes: number;
  reversals: number;
  /** Reversals within 300 s of the previous change: flapping, as opposed to a late correction. */
  flaps: number;
  replicaSeconds: number;
  idealSeconds: number;
  idealWholeSeconds: number;
  overIdealPct: number;
  overWholePct: number;
  underProvisionedS: number;
}

export function run(trace: Trace, scaler: Scaler, s: SimulationSettings): Result {
  const {min: MIN, max: MAX, target: TARGET, scrapeSeconds: SCRAPE_S} = s;
  let current = MIN;
  let changes = 0;
  let reversals = 0;
  let lastDirection = 0;
  let lastChangeAt = -Infinity;
  let flaps = 0;
  let replicaSeconds = 0;
  let ideal = 0;
  let idealWhole = 0;
  let under = 0;
  let reactionS: number | undefined;
  let readyForStepS: number | undefined;
  let downAfterStopS: number | undefined;
  const before = trace.stepAt === undefined ? 0 : Math.min(MAX, Math.max(MIN, Math.ceil(trace.load[trace.stepAt - 1]! / TARGET)));
  const needed = trace.stepAt === undefined ? 0 : Math.min(MAX, Math.ceil(trace.load[trace.stepAt]! / TARGET));
  for (let t = 0; t < trace.load.length; t++) {
    if (t % scaler.intervalS === 0) {
      const observed = trace.load[Math.floor(t / SCRAPE_S) * SCRAPE_S]!;
      const next = scaler.decide(observed, current, t);
      if (next !== current) {
        changes++;
        const direction = Math.sign(next - current);
        if (lastDirection !== 0 && direction !== lastDirection) {
          reversals++;
          if (t - lastChangeAt < 300) flaps++;
        }
        lastDirection = direction;
        lastChangeAt = t;
        current = next;
      }
    }
    if (trace.stepAt !== undefined && t >= trace.stepAt) {
      if (reactionS === undefined && current > before) reactionS = t - trace.stepAt;
      if (readyForStepS === undefined && current >= needed) readyForStepS = t - trace.stepAt;
    }
    if (trace.stopAt !== undefined && t >= trace.stopAt && downAfterStopS === undefined && current === MIN) downAfterStopS = t - trace.stopAt;
    const load = trace.load[t]!;
    replicaSeconds += current;
    ideal += Math.max(MIN, load / TARGET);
    idealWhole += Math.min(MAX, Math.max(MIN, Math.ceil(load / TARGET)));
    if (current * TARGET < load) under++;
  }
  return {
    trace: trace.name,
    scaler: scaler.name,
    ...(reactionS === undefined ? {} : {reactionS}),
    ...(readyForStepS === undefined ? {} : {readyForStepS}),
    ...(downAfterStopS === undefined ? {} : {downAfterStopS}),
    changes,
    reversals,
    flaps,
    replicaSeconds,
    idealSeconds: Math.round(ideal),
    idealWholeSeconds: idealWhole,
    overIdealPct: round((replicaSeconds / ideal - 1) * 100),
    overWholePct: round((replicaSeconds / idealWhole - 1) * 100),
    underProvisionedS: under
  };
}

