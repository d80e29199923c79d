/**
 * Replays load traces (step, ramp, bursty, noisy) through Paddock's recommender and, as the
 * baseline, the Kubernetes HPA algorithm with its defaults, both in simulated time on the
 * same scraped signal. Prints a table and writes bench/results/autoscaler.json.
 *
 * Model: Prometheus scrapes the load gauge every 5 s; a scaler sees the last scrape.
 * The Deployment follows a decision at once and a replica costs from that moment (a GPU is
 * held while its pod starts). Ideal = load / target each second (never below min), as
 * fractional replicas, and as whole replicas (ceil).
 */
import {recommend, type ScalingPolicy, type Window} from "../operator/src/autoscaler/recommender.js";
import {printTable, writeResults} from "./lib/report.js";
import {round} from "./lib/stats.js";

const SCRAPE_S = 5;
const MIN = 1;
const MAX = 32;
const TARGET = 4;

type Trace = {name: string; load: number[]; stepAt?: number};

function rng(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
}

function traces(): Trace[] {
  const step = [...Array<number>(120).fill(4), ...Array<number>(900).fill(40), ...Array<number>(900).fill(4)];
  const ramp = Array.from({length: 2400}, (_, t) => (t < 1200 ? (60 * t) / 1200 : 60 - (60 * (t - 1200)) / 1200));
  const r1 = rng(7);
  // A steady base with short bursts at irregular times: 60 s at 4x, about every 4-8 minutes.
  const bursty: number[] = [];
  let nextBurst = 200;
  for (let t = 0; t < 3600; t++) {
    if (t >= nextBurst + 60) nextBurst = t + 240 + Math.floor(r1() * 240);
    const base = 12 * (0.8 + 0.4 * r1());
    bursty.push(t >= nextBurst && t < nextBurst + 60 ? base * 4 : base);
  }
  const r2 = rng(42);
  const noisy = Array.from({length: 3600}, () => 24 * (0.6 + 0.8 * r2()));
  return [{name: "step", load: step, stepAt: 120}, {name: "ramp", load: ramp}, {name: "bursty", load: bursty}, {name: "noisy", load: noisy}];
}

interface Scaler {
  readonly name: string;
  readonly intervalS: number;
  decide(observed: number, current: number, t: number): number;
}

/** Paddock's recommender, as the operator's loop drives it. */
function paddock(scaleDownDelaySeconds: number, intervalS = 10): Scaler {
  const p: ScalingPolicy = {min: MIN, max: MAX, targetActiveRequests: TARGET, scaleDownDelaySeconds};
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
function hpa(): Scaler {
  const recs: Array<{t: number; r: number}> = [];
  return {
    name: "HPA defaults (300s stabilization, every 15s)",
    intervalS: 15,
    decide(observed, current, t) {
      const ratio = observed / (current * TARGET);
      let r = Math.abs(ratio - 1) <= 0.1 ? current : Math.ceil(observed / TARGET);
      r = Math.min(MAX, Math.max(MIN, r));
      recs.push({t, r});
      while (recs.length && recs[0]!.t <= t - 300) recs.shift();
      if (r < current) r = Math.min(current, Math.max(...recs.map((x) => x.r)));
      if (r > current) r = Math.min(r, Math.max(current * 2, current + 4));
      return r;
    }
  };
}

interface Result {
  trace: string;
  scaler: string;
  reactionS?: number;
  readyForStepS?: number;
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

function run(trace: Trace, scaler: Scaler): Result {
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

const results: Result[] = [];
for (const trace of traces()) {
  for (const scaler of [hpa(), paddock(300), paddock(60)]) results.push(run(trace, scaler));
}
printTable(
  `Autoscaling in simulated time (target ${TARGET} active requests per replica, min ${MIN}, max ${MAX}, ${SCRAPE_S}s scrapes)`,
  results.map((r) => ({
    trace: r.trace,
    scaler: r.scaler,
    "react s": r.reactionS ?? "",
    "to needed s": r.readyForStepS ?? "",
    changes: r.changes,
    reversals: r.reversals,
    "flaps (<300s)": r.flaps,
    "replica-s": r.replicaSeconds,
    "vs ideal": `+${r.overIdealPct}%`,
    "vs whole ideal": `+${r.overWholePct}%`,
    "under-provisioned s": r.underProvisionedS
  }))
);
console.log(`\nwrote ${writeResults("autoscaler", {scrapeSeconds: SCRAPE_S, min: MIN, max: MAX, target: TARGET, results})}`);
