import type {V1Pod} from "@kubernetes/client-node";
import {CONTAINER, DEFAULT_PORT, HTTP_PORT_NAME} from "../../../contract/index.js";
import type {Condition, LlmService, LlmServiceStatus} from "../api/llmservice.js";
import type {EventSpec} from "../controller/events.js";
import type {ServingPod} from "./load.js";
import {deletionCosts, persistable, recommend, sameWindow, type Decision, type Load, type Window} from "./recommender.js";

export const SCALING_CONDITION = "ScalingActive";
/** Decisions kept in status.scalingDecisions. */
export const DECISIONS_KEPT = 10;
export const DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

/** The autoscaler's memory of one service between evaluations. */
export interface ScalingMemory {
  readonly window: Window;
  /** The window as last written to status. */
  readonly stored: Window;
}

export interface EvaluationInput {
  readonly svc: LlmService;
  /** The Deployment's replicas now. */
  readonly current: number;
  readonly load: Load;
  readonly memory: ScalingMemory;
  /** The service's pods (their deletion-cost annotations). */
  readonly pods: readonly V1Pod[];
  readonly nowMs: number;
}

export interface EvaluationPlan {
  readonly decision: Decision;
  /** For the operator's metrics. */
  readonly result: "ok" | "fallback" | "no_data";
  /** The new replica count, when it changes. */
  readonly scale: {readonly from: number; readonly to: number} | undefined;
  /**
   * Deletion costs to set before a scale-down (only those that differ from the pods'
   * annotations), so the ReplicaSet removes the idlest pods first.
   */
  readonly deletionCosts: ReadonlyArray<readonly [pod: string, cost: string]>;
  readonly events: readonly EventSpec[];
  /** The autoscaler's status fields to write; undefined when nothing worth reading changed. */
  readonly status: LlmServiceStatus | undefined;
  readonly memory: ScalingMemory;
}

/**
 * One evaluation of one service as data: the decision (recommender.ts), the scale, the
 * deletion costs, the events and the status. Pure; the loop (autoscaler.ts) reads the load,
 * calls this, and executes what it returns.
 */
export function planEvaluation(input: EvaluationInput): EvaluationPlan {
  const {svc, current, load, nowMs, memory} = input;
  const spec = svc.spec.autoscaling;
  const policy = {min: svc.spec.replicas.min, max: svc.spec.replicas.max, targetActiveRequests: spec.targetActiveRequests, scaleDownDelaySeconds: spec.scaleDownDelaySeconds};
  const decision = recommend(load, current, memory.window, policy, nowMs);
  const scaled = decision.replicas !== current;
  const events: EventSpec[] = [];
  if (scaled) {
    events.push({type: "Normal", reason: decision.replicas > current ? "ScaledUp" : "ScaledDown", action: "Scale", note: `${current} -> ${decision.replicas} replicas: ${decision.message}`});
  }
  const costs = scaled && decision.replicas < current && load.ok && load.perPod ? [...deletionCosts(load.perPod)].filter(([pod, cost]) => annotationOf(input.pods, pod) !== cost) : [];

  const condition = scalingCondition(decision, load.ok && load.fallbackFrom ? load.fallbackFrom : undefined);
  const previous = svc.status?.conditions?.find((c) => c.type === SCALING_CONDITION);
  const changedCondition = !previous || previous.status !== condition.status || previous.reason !== condition.reason;
  if (changedCondition && previous && condition.status === "False") events.push({type: "Warning", reason: condition.reason, action: "Autoscale", note: condition.message});

  const toStore = persistable(decision.window, memory.stored);
  let status: LlmServiceStatus | undefined;
  // Status is written only when something worth reading changed, not on every evaluation:
  // the live load is in the operator's metrics (paddock_autoscaler_active_requests).
  if (scaled || changedCondition || !sameWindow(toStore, memory.stored)) {
    const at = new Date(nowMs).toISOString();
    const decisions = [...(svc.status?.scalingDecisions ?? [])];
    if (scaled) decisions.push({time: at, replicas: decision.replicas, ...(load.ok ? {load: round(load.activeRequests)} : {}), reason: decision.message.slice(0, 512)});
    status = {
      scaleDownWindow: toStore.map((e) => ({replicas: e.replicas, time: new Date(e.time).toISOString()})),
      scalingDecisions: decisions.slice(-DECISIONS_KEPT),
      conditions: [{...condition, observedGeneration: svc.metadata.generation ?? 0, lastTransitionTime: previous && previous.status === condition.status ? previous.lastTransitionTime : at}],
      ...(scaled ? {lastScaleTime: at} : svc.status?.lastScaleTime ? {lastScaleTime: svc.status.lastScaleTime} : {})
    };
  }
  return {
    decision,
    result: !load.ok ? "no_data" : load.fallbackFrom ? "fallback" : "ok",
    scale: scaled ? {from: current, to: decision.replicas} : undefined,
    deletionCosts: costs,
    events,
    status,
    memory: {window: decision.window, stored: status ? toStore : memory.stored}
  };
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

/** Ready, not terminating pods with an IP: the ones the Service sends requests to. */
export function servingPods(pods: readonly V1Pod[]): ServingPod[] {
  return pods.flatMap((p) => {
    const ready = p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    if (!ready || p.metadata?.deletionTimestamp || p.status?.phase !== "Running" || !p.status.podIP || !p.metadata?.name) return [];
    const port = p.spec?.containers?.find((c) => c.name === CONTAINER.server)?.ports?.find((x) => x.name === HTTP_PORT_NAME)?.containerPort ?? DEFAULT_PORT;
    const host = p.status.podIP.includes(":") ? `[${p.status.podIP}]` : p.status.podIP;
    return [{name: p.metadata.name, url: `http://${host}:${port}`}];
  });
}

export function annotationOf(pods: readonly V1Pod[], name: string): string | undefined {
  return pods.find((p) => p.metadata?.name === name)?.metadata?.annotations?.[DELETION_COST];
}

const round = (n: number) => Math.round(n * 100) / 100;
