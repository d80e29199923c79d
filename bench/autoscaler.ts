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
import {hpa, paddock, run, type Result, type Trace} from "./lib/autoscaler-sim.js";
import {printTable, writeResults} from "./lib/report.js";

const SCRAPE_S = 5;
const MIN = 1;
const MAX = 32;
const TARGET = 4;
const SETTINGS = {scrapeSeconds: SCRAPE_S, min: MIN, max: MAX, target: TARGET};

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

const results: Result[] = [];
for (const trace of traces()) {
  for (const scaler of [hpa(SETTINGS), paddock(SETTINGS, 300), paddock(SETTINGS, 60)]) results.push(run(trace, scaler, SETTINGS));
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
