/**
 * The autoscaler's decision, as a pure function of what was observed, the spec, the
 * remembered window and the clock. No I/O: the loop (autoscaler.ts) feeds it and writes
 * what it returns, and the benchmark replays traces through it in simulated time.
 */

/** Within this fraction of the target per replica, the current count is kept (as the HPA does). */
export const TOLERANCE = 0.1;
/**
 * Scale-up is bounded per decision, as the HPA's default policy: to at most double, or +4
 * replicas where that is more, so one bad sample cannot claim every GPU yet a service at 1
 * replica is not held to 1 -> 2 -> 4 -> 8 on a large step.
 */
export const MAX_SCALE_UP_FACTOR = 2;
export const MIN_SCALE_UP_LIMIT = 4;

export interface ScalingPolicy {
  readonly min: number;
  readonly max: number;
  /** In-flight requests per replica to aim for. */
  readonly targetActiveRequests: number;
  /** Recommendations stay in the scale-down window this long (s). */
  readonly scaleDownDelaySeconds: number;
}

/** What was measured this evaluation. */
export type Load =
  | {
      readonly ok: true;
      /** Total in-flight requests (queued ones included) over the service's pods. */
      readonly activeRequests: number;
      /** In-flight requests per pod name, where known: a scale-down removes the idlest pods. */
      readonly perPod?: ReadonlyMap<string, number>;
      /**
       * False when some running pod was missing from the data (not scraped yet, scrape
       * failing): the load is then a lower bound, good enough to scale up, never to scale down.
       */
      readonly complete: boolean;
      /** Where the numbers came from, for the explanation. */
      readonly source: string;
      /** Set when Prometheus failed and the pods were read directly instead: why. */
      readonly fallbackFrom?: {readonly reason: string; readonly message: string};
    }
  | {readonly ok: false; readonly reason: string; readonly message: string};

/**
 * Recommendations still inside the scale-down window, as a max-queue: replicas strictly
 * decreasing, each with the last time a recommendation at least that high was made.
 * The window's maximum is the first entry. Lives in status, so a restart keeps it.
 */
export type Window = ReadonlyArray<{readonly replicas: number; readonly time: number}>;

export interface Decision {
  readonly replicas: number;
  /** Scaled, ScaleDownDelayed, Holding...: stable words for conditions and events. */
  readonly reason: string;
  /** One sentence a user reads in `kubectl describe`. */
  readonly message: string;
  /** The unstabilized recommendation, when the load was known. */
  readonly recommended?: number;
  readonly window: Window;
  /** Whether the load was usable (ScalingActive). */
  readonly active: boolean;
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * Replicas wanted from the load alone: `ceil(load / target)` clamped to [min, max], or
 * the current count while the load per replica is within TOLERANCE of the target.
 */
export function rawRecommendation(activeRequests: number, current: number, p: ScalingPolicy): number {
  const clamp = (n: number) => Math.min(p.max, Math.max(p.min, n));
  if (current > 0 && Math.abs(activeRequests / (current * p.targetActiveRequests) - 1) <= TOLERANCE) return clamp(current);
  return clamp(Math.ceil(activeRequests / p.targetActiveRequests - 1e-9));
}

/**
 * Next replica count. Up: at once, at most doubling. Down: only to the highest
 * recommendation made within the last `scaleDownDelaySeconds`, and never on incomplete or
 * missing data (then the current count holds). `nowMs` is the clock in ms.
 *
 * In-flight requests are protected on scale-down by choosing which pods go (the idlest:
 * see deletionCosts) and by the server draining on SIGTERM, not by a floor of "pods with
 * any request": the Service spreads requests over every pod, so such a floor would pin the
 * replicas at about one request per pod instead of the target.
 */
export function recommend(load: Load, current: number, window: Window, p: ScalingPolicy, nowMs: number): Decision {
  const clampToSpec = (n: number) => Math.min(p.max, Math.max(p.min, n));
  const live = window.filter((e) => nowMs - e.time < p.scaleDownDelaySeconds * 1000);
  if (!load.ok) {
    // Missing data never means "no load": keep what runs (within the spec's bounds).
    const replicas = clampToSpec(current);
    return {replicas, reason: load.reason, message: `${load.message}; holding ${plural(replicas, "replica")}`, window: live, active: false};
  }
  const recommended = rawRecommendation(load.activeRequests, current, p);
  const next = remember(live, recommended, nowMs);
  const observed = `load ${fmt(load.activeRequests)} active requests (${load.source}), target ${fmt(p.targetActiveRequests)} per replica`;

  if (current < p.min || current > p.max) {
    const replicas = clampToSpec(current);
    return {replicas, recommended, reason: "OutsideBounds", message: `${plural(current, "replica")} is outside [${p.min}, ${p.max}]: scaling to ${replicas}; ${observed}`, window: next, active: true};
  }
  if (recommended > current) {
    const replicas = Math.min(recommended, Math.max(current * MAX_SCALE_UP_FACTOR, current + MIN_SCALE_UP_LIMIT));
    const capped = replicas < recommended ? ` (at most x${MAX_SCALE_UP_FACTOR} or +${MIN_SCALE_UP_LIMIT} per step, ${recommended} wanted)` : "";
    return {replicas, recommended, reason: "ScaledUp", message: `scaling up to ${replicas}${capped}: ${observed}`, window: next, active: true};
  }
  if (recommended < current) {
    if (!load.complete) {
      return {replicas: current, recommended, reason: "IncompleteMetrics", message: `not scaling down to ${recommended}: some pods have no metrics yet; ${observed}`, window: next, active: true};
    }
    const stabilized = next[0]!.replicas;
    const replicas = Math.min(current, Math.max(stabilized, p.min));
    if (replicas === current) {
      const why = `load has not stayed low for ${p.scaleDownDelaySeconds}s (${stabilized} recommended within the window)`;
      return {replicas, recommended, reason: "ScaleDownDelayed", message: `${recommended} would do, keeping ${current}: ${why}; ${observed}`, window: next, active: true};
    }
    return {replicas, recommended, reason: "ScaledDown", message: `scaling down to ${replicas}: load stayed low for ${p.scaleDownDelaySeconds}s; ${observed}`, window: next, active: true};
  }
  return {replicas: current, recommended, reason: "AtTarget", message: `${plural(current, "replica")} fits: ${observed}`, window: next, active: true};
}

/** Adds a recommendation to the window: entries it dominates (lower or equal, older) drop out. */
function remember(window: Window, replicas: number, nowMs: number): Window {
  return [...window.filter((e) => e.replicas > replicas), {replicas, time: nowMs}];
}

/**
 * The window as stored in status. The newest entry's time moves every evaluation; storing
 * it would mean a status write per service per interval, so it is stored with the time it
 * was first reached and `restore` treats it as seen just now: after a restart, the
 * scale-down can only come later than planned, never earlier.
 */
export function persistable(window: Window, previous: Window): Window {
  const last = window.at(-1);
  if (!last) return [];
  const before = previous.at(-1);
  const since = before && before.replicas === last.replicas ? before.time : last.time;
  return [...window.slice(0, -1), {replicas: last.replicas, time: since}];
}

export function restore(stored: Window, nowMs: number): Window {
  const last = stored.at(-1);
  return last ? [...stored.slice(0, -1), {replicas: last.replicas, time: Math.max(last.time, nowMs)}] : [];
}

/** Whether two windows differ in what would be stored. */
export function sameWindow(a: Window, b: Window): boolean {
  return a.length === b.length && a.every((e, i) => e.replicas === b[i]!.replicas && e.time === b[i]!.time);
}

/**
 * `controller.kubernetes.io/pod-deletion-cost` per pod before a scale-down: the ReplicaSet
 * controller removes lower costs first, so idle pods go before busy ones (whose requests
 * would otherwise have to finish within the drain grace period).
 */
export function deletionCosts(perPod: ReadonlyMap<string, number>): Map<string, string> {
  return new Map([...perPod].map(([pod, active]) => [pod, String(Math.min(2 ** 31 - 1, Math.round(active * 100)))]));
}
