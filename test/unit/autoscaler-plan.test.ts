import type {V1Pod} from "@kubernetes/client-node";
import {parseLlmService, type LlmService} from "../../operator/src/api/llmservice.js";
import {DELETION_COST, planEvaluation, servingPods, type EvaluationInput} from "../../operator/src/autoscaler/plan.js";
import type {Load} from "../../operator/src/autoscaler/recommender.js";

const T0 = Date.parse("2026-12-01T00:00:00Z");

function svc(status: Record<string, unknown> = {}): LlmService {
  return parseLlmService({
    metadata: {name: "chat", namespace: "ns", uid: "u", generation: 4},
    spec: {model: {uri: "https://h/x.gguf"}, replicas: {min: 1, max: 8}, autoscaling: {enabled: true, targetActiveRequests: 2, scaleDownDelaySeconds: 60}},
    status
  });
}

const load = (activeRequests: number, perPod?: Record<string, number>): Load & {ok: true} => ({
  ok: true,
  activeRequests,
  complete: true,
  source: "Prometheus, 2/2 pods",
  ...(perPod ? {perPod: new Map(Object.entries(perPod))} : {})
});

function input(patch: Partial<EvaluationInput>): EvaluationInput {
  return {svc: svc(), current: 2, load: load(4), memory: {window: [], stored: []}, pods: [], nowMs: T0, ...patch};
}

/** Feeds each plan's status and memory into the next evaluation, as the loop does. */
function evaluateAfter(first: ReturnType<typeof planEvaluation>, patch: Partial<EvaluationInput>) {
  return planEvaluation(input({svc: svc(first.status ?? {}), memory: first.memory, ...patch}));
}

const pod = (name: string, cost?: string): V1Pod => ({metadata: {name, ...(cost ? {annotations: {[DELETION_COST]: cost}} : {})}});

describe("planEvaluation", () => {
  it("scales up at once, with an event, the decision and lastScaleTime in status", () => {
    const plan = planEvaluation(input({load: load(12)}));
    expect(plan.scale).toEqual({from: 2, to: 6});
    expect(plan.events).toEqual([expect.objectContaining({type: "Normal", reason: "ScaledUp", note: expect.stringMatching(/^2 -> 6 replicas: scaling up to 6/)})]);
    expect(plan.status).toMatchObject({lastScaleTime: new Date(T0).toISOString(), scalingDecisions: [{replicas: 6, load: 12}], conditions: [{type: "ScalingActive", status: "True", reason: "LoadObserved", observedGeneration: 4}]});
    expect(plan.result).toBe("ok");
  });

  it("writes no status while nothing worth reading changes", () => {
    const first = planEvaluation(input({load: load(4)}));
    expect(first.scale).toBeUndefined();
    expect(first.status).toBeDefined(); // the first evaluation sets the condition
    const second = evaluateAfter(first, {load: load(4.1), nowMs: T0 + 10_000});
    expect(second.status).toBeUndefined();
    expect(second.events).toEqual([]);
  });

  it("scales down only after the window, marking the idlest pods whose cost differs", () => {
    const busy = planEvaluation(input({current: 4, load: load(8)}));
    const quiet = evaluateAfter(busy, {current: 4, load: load(2, {a: 0, b: 2, c: 0, d: 0}), nowMs: T0 + 30_000});
    expect(quiet.scale).toBeUndefined();
    expect(quiet.decision.reason).toBe("ScaleDownDelayed");
    expect(quiet.deletionCosts).toEqual([]);
    const later = evaluateAfter(quiet, {current: 4, load: load(2, {a: 0, b: 2, c: 0, d: 0}), nowMs: T0 + 61_000, pods: [pod("a", "0"), pod("b"), pod("c"), pod("d", "5")]});
    expect(later.scale).toEqual({from: 4, to: 1});
    // b is busy (cost 2 keeps it), d's stale cost is corrected, a already has the right one.
    expect(Object.fromEntries(later.deletionCosts)).toEqual({b: "200", c: "0", d: "0"});
  });

  it("holds on missing data and warns when the condition turns False", () => {
    const first = planEvaluation(input({load: load(4)}));
    const blind = evaluateAfter(first, {load: {ok: false, reason: "PrometheusUnavailable", message: "Prometheus at http://p:9090 is unreachable"}, nowMs: T0 + 10_000});
    expect(blind.scale).toBeUndefined();
    expect(blind.result).toBe("no_data");
    expect(blind.status?.conditions?.[0]).toMatchObject({status: "False", reason: "PrometheusUnavailable"});
    expect(blind.events).toEqual([expect.objectContaining({type: "Warning", reason: "PrometheusUnavailable"})]);
  });

  it("says when it reads the pods' /metrics because Prometheus failed", () => {
    const plan = planEvaluation(input({load: {...load(4), fallbackFrom: {reason: "PrometheusUnavailable", message: "connect ECONNREFUSED"}}}));
    expect(plan.result).toBe("fallback");
    expect(plan.status?.conditions?.[0]).toMatchObject({status: "True", reason: "PodMetricsFallback", message: expect.stringMatching(/^connect ECONNREFUSED; reading the pods/)});
  });

  it("remembers the stored window only when it writes status", () => {
    const first = planEvaluation(input({current: 4, load: load(8)}));
    expect(first.memory.stored).toEqual(first.status?.scaleDownWindow?.map((e) => ({replicas: e.replicas, time: Date.parse(e.time)})));
    const same = evaluateAfter(first, {current: 4, load: load(8), nowMs: T0 + 10_000});
    expect(same.status).toBeUndefined();
    expect(same.memory.stored).toBe(first.memory.stored);
  });
});

describe("servingPods", () => {
  it("takes ready, running, not terminating pods with an IP, on the server's http port", () => {
    const ready = {type: "Ready", status: "True"};
    const pods: V1Pod[] = [
      {metadata: {name: "a"}, spec: {containers: [{name: "server", ports: [{name: "http", containerPort: 9000}]}]}, status: {phase: "Running", podIP: "10.0.0.1", conditions: [ready]}},
      {metadata: {name: "b"}, status: {phase: "Running", podIP: "fd00::2", conditions: [ready]}},
      {metadata: {name: "c", deletionTimestamp: new Date()}, status: {phase: "Running", podIP: "10.0.0.3", conditions: [ready]}},
      {metadata: {name: "d"}, status: {phase: "Running", podIP: "10.0.0.4", conditions: [{type: "Ready", status: "False"}]}},
      {metadata: {name: "e"}, status: {phase: "Pending", conditions: [ready]}}
    ];
    expect(servingPods(pods)).toEqual([
      {name: "a", url: "http://10.0.0.1:9000"},
      {name: "b", url: "http://[fd00::2]:8000"}
    ]);
  });
});
