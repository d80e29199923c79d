import type {V1Pod} from "@kubernetes/client-node";
import {PATHS} from "../../../contract/index.js";
import {API_VERSION, KIND, parseLlmService, type LlmService, type LlmServiceStatus} from "../api/llmservice.js";
import type {EventRecorder} from "../controller/events.js";
import {demandIsDue} from "./demand.js";
import {SCALER_FIELD_MANAGER} from "../controller/plan.js";
import type {KubeClient} from "../kube/kube-client.js";
import {readLoad, type LoadSources, type ServingPod} from "./load.js";
import {annotationOf, DELETION_COST, planEvaluation, SCALING_CONDITION, servingPods, type ScalingMemory} from "./plan.js";
import type {Sample} from "./prometheus.js";
import {restore, type Decision, type Load, type Window} from "./recommender.js";

/** The autoscaler's own status fields are applied under this manager; the reconciler's stay its own. */
export const AUTOSCALER_FIELD_MANAGER = "paddock-autoscaler";

export interface AutoscalerObserver {
  onEvaluation(namespace: string, name: string, result: "ok" | "fallback" | "no_data", load: number | undefined, replicas: number): void;
  onScale(direction: "up" | "down"): void;
  onForget(namespace: string, name: string): void;
  onError(message: string, error: unknown): void;
}

export interface AutoscalerDeps {
  readonly kube: KubeClient;
  readonly events: EventRecorder;
  /** Every LlmService in the watch cache (raw objects). */
  readonly services: () => readonly unknown[];
  readonly podsOf: (namespace: string, name: string) => readonly V1Pod[];
  readonly deployment: (namespace: string, name: string) => {spec?: {replicas?: number}} | undefined;
  /** Requests the service's routers hold for want of a ready replica (its demand Lease). */
  readonly held?: (namespace: string, name: string, nowMs: number) => number;
  /** The operator's --prometheus-url, for services that do not name their own. */
  readonly defaultPrometheusUrl: string;
  /** An instant-query client for a Prometheus URL (main.ts builds PrometheusClients, one per URL). */
  readonly prometheus: (url: string) => {query(promql: string): Promise<Sample[]>};
  readonly observer: AutoscalerObserver;
  /** Reads a pod's /metrics. Defaults to an HTTP GET with a 1 s timeout. */
  readonly podMetrics?: (pod: ServingPod) => Promise<string>;
  /** Clock in ms. Defaults to Date.now. */
  readonly now?: () => number;
  /** How often due services are looked for. Defaults to 1000 (ms). */
  readonly tickMs?: number;
}

type Memory = ScalingMemory & {nextDueMs: number};

/** The fields of a cached LlmService that `tick` reads before deciding to parse it. */
type RawService = {
  metadata: {name: string; namespace: string; deletionTimestamp?: string};
  spec?: {autoscaling?: {enabled?: boolean; targetActiveRequests?: number}; replicas?: {max?: number}};
  status?: {conditions?: Array<{type: string}>};
};

/**
 * Sizes every LlmService with `spec.autoscaling.enabled` from its load (see recommender.ts)
 * on the service's interval. Runs on the leader only, next to the controller. It writes the
 * Deployment's replicas through the scale subresource (the reconciler keeps whatever count
 * is within [min, max], so the two never fight) and its own status fields: the scale-down
 * window, the last decisions and the ScalingActive condition.
 */
export class Autoscaler {
  readonly #memory = new Map<string, Memory>();
  readonly #running = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  readonly #sources: (url: string) => LoadSources;

  constructor(private readonly deps: AutoscalerDeps) {
    const podMetrics = deps.podMetrics ?? fetchPodMetrics;
    this.#sources = (url) => {
      const client = deps.prometheus(url);
      return {query: (q) => client.query(q), podMetrics};
    };
  }

  start(): void {
    this.#timer = setInterval(() => this.tick(), this.deps.tickMs ?? 1_000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Starts an evaluation of every service that is due and not already being evaluated. */
  tick(): void {
    const now = this.#now();
    const seen = new Set<string>();
    for (const raw of this.deps.services() as RawService[]) {
      if (raw.metadata.deletionTimestamp) continue;
      const key = `${raw.metadata.namespace}/${raw.metadata.name}`;
      seen.add(key);
      // Cheap checks on the raw object first: most ticks find nothing due, and parsing every
      // service every second would cost more than the evaluations themselves.
      if (this.#running.has(key)) continue;
      const enabled = raw.spec?.autoscaling?.enabled === true;
      // Held requests can make a service due now: at zero (waking it cannot wait for the
      // interval), or when they ask for more replicas than it has (see demandIsDue).
      if ((this.#memory.get(key)?.nextDueMs ?? 0) > now && !(enabled && this.#demandDue(raw, now))) continue;
      if (!enabled && !raw.status?.conditions?.some((c) => c.type === SCALING_CONDITION)) continue;
      const svc = parseSafely(raw);
      if (!svc) continue;
      this.#run(key, () => (enabled ? this.evaluate(svc) : this.#clear(svc)));
    }
    for (const key of this.#memory.keys()) {
      if (seen.has(key)) continue;
      this.#memory.delete(key);
      const [ns, name] = key.split("/") as [string, string];
      this.deps.observer.onForget(ns, name);
    }
  }

  #run(key: string, task: () => Promise<unknown>): void {
    if (this.#running.has(key)) return;
    this.#running.add(key);
    task()
      .catch((e: unknown) => this.deps.observer.onError(`autoscaling ${key} failed`, e))
      .finally(() => this.#running.delete(key));
  }

  /** One evaluation of one service: read the load, plan (planEvaluation), execute. Returns the decision. */
  async evaluate(svc: LlmService): Promise<Decision | undefined> {
    const {namespace, name} = svc.metadata;
    const key = `${namespace}/${name}`;
    const now = this.#now();
    const spec = svc.spec.autoscaling;
    let memory = this.#memory.get(key);
    if (!memory) {
      // First look since this instance started leading: continue the window in status.
      const stored = storedWindow(svc.status);
      memory = {window: restore(stored, now), stored, nextDueMs: now};
    }
    memory = {...memory, nextDueMs: now + spec.intervalSeconds * 1000};
    this.#memory.set(key, memory);
    const current = this.deps.deployment(namespace, name)?.spec?.replicas;
    if (current === undefined) return undefined; // the reconciler has not created it yet

    const pods = this.deps.podsOf(namespace, name);
    const serving = servingPods(pods);
    const held = this.deps.held?.(namespace, name, now) ?? 0;
    // At zero there is nothing to query: the load is what the routers hold.
    const read: Load =
      current === 0 && serving.length === 0
        ? {ok: true, activeRequests: 0, complete: true, source: "no replica runs"}
        : await readLoad(this.#sources(spec.prometheusURL ?? this.deps.defaultPrometheusUrl), namespace, name, serving, spec.query);
    const load = withHeld(read, held);
    const plan = planEvaluation({svc, current, load, memory, pods, nowMs: now});
    this.#memory.set(key, {...plan.memory, nextDueMs: memory.nextDueMs});
    this.deps.observer.onEvaluation(namespace, name, plan.result, load.ok ? load.activeRequests : undefined, plan.decision.replicas);

    if (plan.deletionCosts.length > 0) await this.#markIdlestFirst(namespace, name, plan.deletionCosts);
    if (plan.scale) {
      await this.deps.kube.scale(namespace, name, plan.scale.to, SCALER_FIELD_MANAGER);
      this.deps.observer.onScale(plan.scale.to > plan.scale.from ? "up" : "down");
    }
    for (const event of plan.events) await this.deps.events.record(svc, event);
    if (plan.status) await this.#writeStatus(svc, plan.status);
    return plan.decision;
  }

  /**
   * Pod deletion costs from each pod's in-flight requests; best effort (a failure only loses
   * the preference). The ReplicaSet controller ranks pods from its watch cache, so this waits
   * (up to 2 s) until the operator's own pod watch shows the costs before the scale is sent.
   */
  async #markIdlestFirst(namespace: string, name: string, costs: ReadonlyArray<readonly [string, string]>): Promise<void> {
    await Promise.all(
      costs.map(([pod, cost]) =>
        this.deps.kube
          .apply({apiVersion: "v1", kind: "Pod", metadata: {name: pod, namespace, annotations: {[DELETION_COST]: cost}}}, AUTOSCALER_FIELD_MANAGER)
          .catch((e: unknown) => this.deps.observer.onError(`setting ${DELETION_COST} on ${namespace}/${pod}`, e))
      )
    );
    const deadline = this.#now() + 2_000;
    while (this.#now() < deadline && costs.some(([pod, cost]) => annotationOf(this.deps.podsOf(namespace, name), pod) !== cost)) await new Promise((r) => setTimeout(r, 50));
  }

  /** Autoscaling was turned off: drop the fields this manager owns (SSA removes what we stop stating). */
  async #clear(svc: LlmService): Promise<void> {
    await this.#writeStatus(svc, {});
    this.#memory.delete(`${svc.metadata.namespace}/${svc.metadata.name}`);
  }

  async #writeStatus(svc: LlmService, status: LlmServiceStatus): Promise<void> {
    await this.deps.kube.apply({apiVersion: API_VERSION, kind: KIND, metadata: {name: svc.metadata.name, namespace: svc.metadata.namespace}, status}, AUTOSCALER_FIELD_MANAGER, {subresource: "status"});
  }

  #demandDue(raw: RawService, nowMs: number): boolean {
    const {namespace, name} = raw.metadata;
    const replicas = this.deps.deployment(namespace, name)?.spec?.replicas;
    if (replicas === undefined) return false;
    const target = raw.spec?.autoscaling?.targetActiveRequests ?? 1;
    return demandIsDue(replicas, this.deps.held?.(namespace, name, nowMs) ?? 0, target > 0 ? target : 1, raw.spec?.replicas?.max ?? 1);
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }
}

/**
 * Held requests are load the replicas have not seen yet: they count with the in-flight ones,
 * and they alone can wake a service at zero (its pods' metrics cannot).
 */
export function withHeld(load: Load, held: number): Load {
  if (held <= 0) return load;
  if (!load.ok) return {ok: true, activeRequests: held, complete: false, source: `${held} requests held by the routers (${load.message})`};
  return {...load, activeRequests: load.activeRequests + held, source: `${load.source}, and ${held} requests held by the routers`};
}

function parseSafely(raw: unknown): LlmService | undefined {
  try {
    return parseLlmService(raw);
  } catch {
    return undefined; // the reconciler reports unparseable objects
  }
}

function storedWindow(status: LlmServiceStatus | undefined): Window {
  return (status?.scaleDownWindow ?? []).map((e) => ({replicas: e.replicas, time: Date.parse(e.time)})).filter((e) => Number.isFinite(e.time));
}

async function fetchPodMetrics(pod: ServingPod): Promise<string> {
  const res = await fetch(`${pod.url}${PATHS.metrics}`, {signal: AbortSignal.timeout(1_000)});
  if (!res.ok) throw new Error(`${pod.name}: /metrics answered HTTP ${res.status}`);
  return res.text();
}
