import {API_VERSION, KIND, parseLlmService, type Condition, type LlmService, type LlmServiceStatus} from "../api/llmservice.js";
import type {EventRecorder} from "../controller/events.js";
import {SCALER_FIELD_MANAGER} from "../controller/reconciler.js";
import type {KubeClient} from "../kube/kube-client.js";
import {readLoad, type LoadSources, type ServingPod} from "./load.js";
import {PrometheusClient} from "./prometheus.js";
import {deletionCosts, persistable, recommend, restore, sameWindow, type Decision, type Window} from "./recommender.js";

/** The autoscaler's own status fields are applied under this manager; the reconciler's stay its own. */
export const AUTOSCALER_FIELD_MANAGER = "paddock-autoscaler";
export const SCALING_CONDITION = "ScalingActive";
/** Decisions kept in status.scalingDecisions. */
export const DECISIONS_KEPT = 10;
export const DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

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
  readonly podsOf: (namespace: string, name: string) => readonly object[];
  readonly deployment: (namespace: string, name: string) => {spec?: {replicas?: number}} | undefined;
  /** The operator's --prometheus-url, for services that do not name their own. */
  readonly defaultPrometheusUrl: string;
  readonly observer: AutoscalerObserver;
  /** Reads a pod's /metrics. Defaults to an HTTP GET with a 1 s timeout. */
  readonly podMetrics?: (pod: ServingPod) => Promise<string>;
  /** Clock in ms. Defaults to Date.now. */
  readonly now?: () => number;
  /** How often due services are looked for. Defaults to 1000 (ms). */
  readonly tickMs?: number;
}

interface Memory {
  window: Window;
  /** The window as last written to status. */
  stored: Window;
  nextDueMs: number;
}

/** The fields of a cached LlmService that `tick` reads before deciding to parse it. */
type RawService = {
  metadata: {name: string; namespace: string; deletionTimestamp?: string};
  spec?: {autoscaling?: {enabled?: boolean}};
  status?: {conditions?: Array<{type: string}>};
};

type PodLike = {
  metadata: {name: string; deletionTimestamp?: string};
  spec?: {containers?: Array<{name: string; ports?: Array<{name?: string; containerPort: number}>}>};
  status?: {phase?: string; podIP?: string; conditions?: Array<{type: string; status: string}>};
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
  readonly #clients = new Map<string, PrometheusClient>();
  readonly #running = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  readonly #sources: (url: string) => LoadSources;

  constructor(private readonly deps: AutoscalerDeps) {
    const podMetrics = deps.podMetrics ?? fetchPodMetrics;
    this.#sources = (url) => {
      let client = this.#clients.get(url);
      if (!client) this.#clients.set(url, (client = new PrometheusClient(url)));
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
      if (this.#running.has(key) || (this.#memory.get(key)?.nextDueMs ?? 0) > now) continue;
      const enabled = raw.spec?.autoscaling?.enabled === true;
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

  /** One evaluation of one service: read the load, decide, scale, record. Returns the decision. */
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
      this.#memory.set(key, memory);
    }
    memory.nextDueMs = now + spec.intervalSeconds * 1000;
    const current = this.deps.deployment(namespace, name)?.spec?.replicas;
    if (current === undefined) return undefined; // the reconciler has not created it yet

    const pods = servingPods(this.deps.podsOf(namespace, name));
    const load = await readLoad(this.#sources(spec.prometheusURL ?? this.deps.defaultPrometheusUrl), namespace, name, pods, spec.query);
    const policy = {min: svc.spec.replicas.min, max: svc.spec.replicas.max, targetActiveRequests: spec.targetActiveRequests, scaleDownDelaySeconds: spec.scaleDownDelaySeconds};
    const decision = recommend(load, current, memory.window, policy, now);
    memory.window = decision.window;
    this.deps.observer.onEvaluation(namespace, name, !load.ok ? "no_data" : load.fallbackFrom ? "fallback" : "ok", load.ok ? load.activeRequests : undefined, decision.replicas);

    const scaled = decision.replicas !== current;
    if (scaled && decision.replicas < current && load.ok && load.perPod) await this.#markIdlestFirst(namespace, name, load.perPod);
    if (scaled) {
      await this.deps.kube.scale(namespace, name, decision.replicas, SCALER_FIELD_MANAGER);
      this.deps.observer.onScale(decision.replicas > current ? "up" : "down");
      await this.deps.events.record(svc, {type: "Normal", reason: decision.replicas > current ? "ScaledUp" : "ScaledDown", action: "Scale", note: `${current} -> ${decision.replicas} replicas: ${decision.message}`});
    }

    const condition = scalingCondition(decision, load.ok && load.fallbackFrom ? load.fallbackFrom : undefined);
    const previous = svc.status?.conditions?.find((c) => c.type === SCALING_CONDITION);
    const changedCondition = !previous || previous.status !== condition.status || previous.reason !== condition.reason;
    if (changedCondition && previous && condition.status === "False") {
      await this.deps.events.record(svc, {type: "Warning", reason: condition.reason, action: "Autoscale", note: condition.message});
    }
    const toStore = persistable(decision.window, memory.stored);
    // Status is written only when something worth reading changed, not on every evaluation:
    // the live load is in the operator's metrics (paddock_autoscaler_active_requests).
    if (scaled || changedCondition || !sameWindow(toStore, memory.stored)) {
      const at = new Date(now).toISOString();
      const decisions = [...(svc.status?.scalingDecisions ?? [])];
      if (scaled) decisions.push({time: at, replicas: decision.replicas, ...(load.ok ? {load: round(load.activeRequests)} : {}), reason: decision.message.slice(0, 512)});
      const status: LlmServiceStatus = {
        scaleDownWindow: toStore.map((e) => ({replicas: e.replicas, time: new Date(e.time).toISOString()})),
        scalingDecisions: decisions.slice(-DECISIONS_KEPT),
        conditions: [{...condition, observedGeneration: svc.metadata.generation ?? 0, lastTransitionTime: previous && previous.status === condition.status ? previous.lastTransitionTime : at}],
        ...(scaled ? {lastScaleTime: at} : svc.status?.lastScaleTime ? {lastScaleTime: svc.status.lastScaleTime} : {})
      };
      await this.#writeStatus(svc, status);
      memory.stored = toStore;
    }
    return decision;
  }

  /**
   * Pod deletion costs from each pod's in-flight requests; best effort (a failure only loses
   * the preference). The ReplicaSet controller ranks pods from its watch cache, so this waits
   * (up to 2 s) until the operator's own pod watch shows the costs before the scale is sent.
   */
  async #markIdlestFirst(namespace: string, name: string, perPod: ReadonlyMap<string, number>): Promise<void> {
    const costs = deletionCosts(perPod);
    const changed = [...costs].filter(([pod, cost]) => annotationOf(this.deps.podsOf(namespace, name), pod) !== cost);
    if (changed.length === 0) return;
    await Promise.all(
      changed.map(([pod, cost]) =>
        this.deps.kube
          .apply({apiVersion: "v1", kind: "Pod", metadata: {name: pod, namespace, annotations: {[DELETION_COST]: cost}}} as never, AUTOSCALER_FIELD_MANAGER)
          .catch((e: unknown) => this.deps.observer.onError(`setting ${DELETION_COST} on ${namespace}/${pod}`, e))
      )
    );
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && changed.some(([pod, cost]) => annotationOf(this.deps.podsOf(namespace, name), pod) !== cost)) await new Promise((r) => setTimeout(r, 50));
  }

  /** Autoscaling was turned off: drop the fields this manager owns (SSA removes what we stop stating). */
  async #clear(svc: LlmService): Promise<void> {
    await this.#writeStatus(svc, {});
    this.#memory.delete(`${svc.metadata.namespace}/${svc.metadata.name}`);
  }

  async #writeStatus(svc: LlmService, status: LlmServiceStatus): Promise<void> {
    await this.deps.kube.apply({apiVersion: API_VERSION, kind: KIND, metadata: {name: svc.metadata.name, namespace: svc.metadata.namespace}, status} as never, AUTOSCALER_FIELD_MANAGER, {subresource: "status"});
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

function annotationOf(pods: readonly object[], name: string): string | undefined {
  const pod = (pods as Array<{metadata: {name: string; annotations?: Record<string, string>}}>).find((p) => p.metadata.name === name);
  return pod?.metadata.annotations?.[DELETION_COST];
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

/** Ready, not terminating pods with an IP: the ones the Service sends requests to. */
export function servingPods(pods: readonly object[]): ServingPod[] {
  return (pods as PodLike[]).flatMap((p) => {
    const ready = p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    if (!ready || p.metadata.deletionTimestamp || p.status?.phase !== "Running" || !p.status.podIP) return [];
    const port = p.spec?.containers?.find((c) => c.name === "server")?.ports?.find((x) => x.name === "http")?.containerPort ?? 8000;
    const host = p.status.podIP.includes(":") ? `[${p.status.podIP}]` : p.status.podIP;
    return [{name: p.metadata.name, url: `http://${host}:${port}`}];
  });
}

/** ScalingActive, as the HPA words it: True while the load can be read and acted on. */
export function scalingCondition(decision: Decision, fallbackFrom: {reason: string; message: string} | undefined): Omit<Condition, "lastTransitionTime" | "observedGeneration"> {
  if (!decision.active) return {type: SCALING_CONDITION, status: "False", reason: decision.reason, message: decision.message.slice(0, 1024)};
  if (fallbackFrom) {
    return {type: SCALING_CONDITION, status: "True", reason: "PodMetricsFallback", message: `${fallbackFrom.message}; reading the pods' /metrics instead: ${decision.message}`.slice(0, 1024)};
  }
  // One reason while the load is readable, whatever was decided: a reason per decision would
  // rewrite status on every evaluation under noisy load. Decisions are in scalingDecisions.
  return {type: SCALING_CONDITION, status: "True", reason: "LoadObserved", message: decision.message.slice(0, 1024)};
}

async function fetchPodMetrics(pod: ServingPod): Promise<string> {
  const res = await fetch(`${pod.url}/metrics`, {signal: AbortSignal.timeout(1_000)});
  if (!res.ok) throw new Error(`${pod.name}: /metrics answered HTTP ${res.status}`);
  return res.text();
}
