import type {V1Deployment, V1PodDisruptionBudget, V1Service} from "@kubernetes/client-node";
import {parseLlmService, type Condition, type LlmService} from "../../operator/src/api/llmservice.js";
import {fingerprint, hashOf, planReconcile, type AppliedRecord, type ReconcileObservation} from "../../operator/src/controller/plan.js";
import {desiredDeployment} from "../../operator/src/desired/deployment.js";
import {desiredRedis} from "../../operator/src/desired/redis.js";
import {desiredPdb, desiredReplicasService, desiredService} from "../../operator/src/desired/service.js";

const defaults = {deployment: {image: "paddock/inference:1"}, redis: {image: "redis:7", maxMemory: "64mb"}, router: {image: "paddock/operator:1"}};
const now = new Date("2026-12-01T00:00:00Z");

function svc(spec: Record<string, unknown> = {}, status: Record<string, unknown> = {}): LlmService {
  // Routing off unless a case turns it on: the router's objects have their own cases.
  return parseLlmService({metadata: {name: "chat", namespace: "ns", uid: "uid-chat", generation: 2}, spec: {model: {uri: "https://h/x.gguf"}, cache: {enabled: false}, routing: {enabled: false}, ...spec}, status});
}

/** The Deployment as the API server would store our apply: generation, a resourceVersion and status. */
function stored(s: LlmService, patch: {replicas?: number; ready?: number; labels?: Record<string, string>; owners?: boolean; generation?: number; rv?: string} = {}): V1Deployment {
  const d = desiredDeployment(s, defaults.deployment);
  const replicas = patch.replicas ?? 1;
  return {
    ...d,
    metadata: {
      ...d.metadata,
      generation: patch.generation ?? 1,
      resourceVersion: patch.rv ?? "100",
      ...(patch.labels ? {labels: patch.labels} : {}),
      ...(patch.owners === false ? {ownerReferences: []} : {})
    },
    spec: {...d.spec!, replicas},
    status: {observedGeneration: patch.generation ?? 1, replicas, readyReplicas: patch.ready ?? replicas, updatedReplicas: replicas, availableReplicas: patch.ready ?? replicas}
  };
}
const storedService = (s: LlmService): V1Service => ({...desiredService(s), metadata: {...desiredService(s).metadata, resourceVersion: "7"}});
const storedReplicas = (s: LlmService): V1Service => ({...desiredReplicasService(s), metadata: {...desiredReplicasService(s).metadata, resourceVersion: "8"}});

/** The memo as our last applies left it, for these stored objects. */
function memo(s: LlmService, deployment: V1Deployment, service: V1Service): Map<string, AppliedRecord> {
  return new Map([
    ["deployment/ns/chat", {hash: hashOf(desiredDeployment(s, defaults.deployment)), fingerprint: fingerprint(deployment)}],
    ["service/ns/chat", {hash: hashOf(desiredService(s)), fingerprint: fingerprint(service)}],
    ["service/ns/chat-replicas", {hash: hashOf(desiredReplicasService(s)), fingerprint: fingerprint(storedReplicas(s))}]
  ]);
}

function observe(s: LlmService, patch: Partial<ReconcileObservation> = {}): ReconcileObservation {
  const replicasService = patch.service ? storedReplicas(s) : undefined;
  return {svc: s, deployment: undefined, service: undefined, pdb: undefined, redis: undefined, pods: [], router: undefined, routerPdb: undefined, replicasService, applied: new Map(), ...patch};
}

/** A service whose status is what a previous, settled reconcile wrote. */
function settled(spec: Record<string, unknown> = {}): {s: LlmService; deployment: V1Deployment; service: V1Service} {
  const first = svc(spec);
  const deployment = stored(first, {replicas: first.spec.replicas.desired ?? first.spec.replicas.min});
  const service = storedService(first);
  const plan = planReconcile(observe(first, {deployment, service, applied: memo(first, deployment, service)}), defaults, now);
  return {s: svc(spec, plan.status ?? {}), deployment, service};
}

const kinds = (plan: {applies: ReadonlyArray<{object: {kind?: string}}>}) => plan.applies.map((a) => a.object.kind);
const condition = (conditions: readonly Condition[] | undefined, type: string) => conditions?.find((c) => c.type === type);

describe("planReconcile", () => {
  it("creates everything for a new service, scales it, and looks again while it starts", () => {
    const plan = planReconcile(observe(svc({replicas: {min: 1, max: 3, desired: 2}})), defaults, now);
    expect(kinds(plan)).toEqual(["Deployment", "Service", "Service"]);
    expect(plan.applies.map((a) => a.object.metadata?.name)).toEqual(["chat", "chat", "chat-replicas"]);
    expect(plan.scale).toBe(2);
    expect(plan.pdb).toMatchObject({action: "apply"});
    expect(condition(plan.status?.conditions, "Ready")).toMatchObject({status: "False", reason: "Creating"});
    expect(plan.events).toEqual([]); // a service starting out is not news
    expect(plan.requeueAfterMs).toBeGreaterThan(0);
  });

  it("writes nothing for a settled service whose objects are as last applied", () => {
    const {s, deployment, service} = settled();
    const plan = planReconcile(observe(s, {deployment, service, applied: memo(s, deployment, service)}), defaults, now);
    expect(plan).toMatchObject({applies: [], scale: undefined, pdb: {action: "none"}, status: undefined, events: [], ready: true, requeueAfterMs: undefined});
  });

  it("ignores status-only changes of the Deployment (resourceVersion moves, generation does not)", () => {
    const {s, deployment, service} = settled();
    const plan = planReconcile(observe(s, {deployment: {...deployment, metadata: {...deployment.metadata, resourceVersion: "101"}}, service, applied: memo(s, deployment, service)}), defaults, now);
    expect(plan.applies).toEqual([]);
  });

  it("applies the Deployment again when someone removed a label or the owner reference (no generation bump)", () => {
    const {s, deployment, service} = settled();
    const applied = memo(s, deployment, service);
    const unlabelled = {...deployment, metadata: {...deployment.metadata, labels: {"app.kubernetes.io/name": "llmservice"}}};
    expect(kinds(planReconcile(observe(s, {deployment: unlabelled, service, applied}), defaults, now))).toEqual(["Deployment"]);
    const orphaned = {...deployment, metadata: {...deployment.metadata, ownerReferences: []}};
    expect(kinds(planReconcile(observe(s, {deployment: orphaned, service, applied}), defaults, now))).toEqual(["Deployment"]);
  });

  it("applies again after a spec change, and after an edit of the Service", () => {
    const {s, deployment, service} = settled();
    const applied = memo(s, deployment, service);
    const changed = svc({engine: {parallelSlots: 8}}, s.status ?? {});
    expect(kinds(planReconcile(observe(changed, {deployment, service, applied}), defaults, now))).toEqual(["Deployment"]);
    const editedService = {...service, metadata: {...service.metadata, resourceVersion: "8"}};
    expect(kinds(planReconcile(observe(s, {deployment, service: editedService, applied}), defaults, now))).toEqual(["Service"]);
  });

  it("decides the PDB from what exists: apply when missing or different, delete when one replica is left", () => {
    const two = svc({replicas: {min: 2, max: 2}});
    const pdb = desiredPdb(two, 2)!;
    expect(planReconcile(observe(two, {deployment: stored(two, {replicas: 2})}), defaults, now).pdb).toEqual({action: "apply", object: pdb});
    expect(planReconcile(observe(two, {deployment: stored(two, {replicas: 2}), pdb}), defaults, now).pdb).toEqual({action: "none"});
    const changed: V1PodDisruptionBudget = {...pdb, spec: {...pdb.spec, maxUnavailable: 2}};
    expect(planReconcile(observe(two, {deployment: stored(two, {replicas: 2}), pdb: changed}), defaults, now).pdb.action).toBe("apply");
    // A PDB left behind, whatever an earlier status said, goes once one replica is wanted.
    const one = svc({}, {desiredReplicas: 1});
    expect(planReconcile(observe(one, {deployment: stored(one), pdb}), defaults, now).pdb).toEqual({action: "delete"});
    expect(planReconcile(observe(one, {deployment: stored(one)}), defaults, now).pdb).toEqual({action: "none"});
  });

  it("keeps the autoscaler's count within [min, max] and pulls an outside count in", () => {
    const auto = svc({replicas: {min: 2, max: 4}, autoscaling: {enabled: true}});
    expect(planReconcile(observe(auto, {deployment: stored(auto, {replicas: 3})}), defaults, now).scale).toBeUndefined();
    expect(planReconcile(observe(auto, {deployment: stored(auto, {replicas: 9})}), defaults, now).scale).toBe(4);
  });

  it("reports an apply the API server refused as ApplyFailed, with an event, and plans no other write", () => {
    const {s, deployment, service} = settled();
    const message = 'Deployment.apps "chat" is invalid: spec.template.spec.affinity: Invalid value';
    const plan = planReconcile(observe(s, {deployment, service, applied: new Map(), applyFailed: message}), defaults, now);
    expect(plan).toMatchObject({applies: [], scale: undefined, pdb: {action: "none"}, requeueAfterMs: undefined});
    expect(condition(plan.status?.conditions, "Degraded")).toMatchObject({status: "True", reason: "ApplyFailed", message});
    // Replicas of the last good spec still serve.
    expect(condition(plan.status?.conditions, "Ready")).toMatchObject({status: "True"});
    expect(plan.events).toContainEqual({type: "Warning", reason: "ApplyFailed", action: "Degraded=True", note: message});
    const fresh = planReconcile(observe(svc(), {applyFailed: message}), defaults, now);
    expect(condition(fresh.status?.conditions, "Ready")).toMatchObject({status: "False", reason: "ApplyFailed"});
  });

  it("shares the namespace's Redis: applies it (three objects) until this service owns it, and reports it unready", () => {
    const s = svc({cache: {enabled: true}});
    const fresh = planReconcile(observe(s), defaults, now);
    expect(kinds(fresh)).toEqual(["Deployment", "Service", "Service", "Deployment", "Service", "NetworkPolicy"]);
    expect(fresh.ensureRedisSecret).toBe(true);
    const [redisDeployment] = desiredRedis(s, defaults.redis);
    const redis: V1Deployment = {...redisDeployment, metadata: {...redisDeployment.metadata, generation: 1}, status: {readyReplicas: 0}};
    const applied = new Map([[`redis/ns/uid-chat`, {hash: hashOf(desiredRedis(s, defaults.redis)), fingerprint: fingerprint(redis)}]]);
    const owned = planReconcile(observe(s, {redis, applied}), defaults, now);
    expect(kinds(owned)).toEqual(["Deployment", "Service", "Service"]);
    expect(condition(owned.status?.conditions, "Degraded")).toMatchObject({status: "True", reason: "CacheUnavailable"});
    const othersOnly = {...redis, metadata: {...redis.metadata, ownerReferences: [{apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", name: "other", uid: "uid-other"}]}};
    expect(kinds(planReconcile(observe(s, {redis: othersOnly, applied}), defaults, now))).toContain("NetworkPolicy");
  });

  it("turns a crash loop into Warning events and keeps looking", () => {
    const {s, deployment, service} = settled();
    const crashing = {...deployment, status: {...deployment.status, readyReplicas: 0}};
    const pods = [{status: {containerStatuses: [{name: "server", image: "i", imageID: "", ready: false, restartCount: 3, state: {waiting: {reason: "CrashLoopBackOff"}}, lastState: {terminated: {exitCode: 1, message: "CUDA error: out of memory"}}}]}}];
    const plan = planReconcile(observe(s, {deployment: crashing, service, pods, applied: memo(s, deployment, service)}), defaults, now);
    expect(plan.events.map((e) => `${e.type} ${e.reason}`)).toEqual(["Warning ServerCrashLooping", "Warning ServerCrashLooping"]);
    expect(plan.ready).toBe(false);
    expect(plan.requeueAfterMs).toBeGreaterThan(0);
  });

  describe("with routing (the default)", () => {
    const routed = (spec: Record<string, unknown> = {}, status: Record<string, unknown> = {}) => svc({routing: {enabled: true}, ...spec}, status);

    it("creates the router's account, Role, binding, demand Lease, Deployment and PDB, and points the Service at the routers", () => {
      const plan = planReconcile(observe(routed()), defaults, now);
      expect(plan.applies.map((a) => `${a.object.kind}/${a.object.metadata?.name}`)).toEqual([
        "Deployment/chat",
        "Service/chat",
        "Service/chat-replicas",
        "ServiceAccount/chat-router",
        "Role/chat-router",
        "RoleBinding/chat-router",
        "Lease/chat-demand",
        "Deployment/chat-router",
        "PodDisruptionBudget/chat-router"
      ]);
      const service = plan.applies.find((a) => a.object.kind === "Service" && a.object.metadata?.name === "chat")!.object as V1Service;
      expect(service.spec?.selector).toEqual({"llm.paddock.dev/router": "chat"});
      const replicas = plan.applies.find((a) => a.object.metadata?.name === "chat-replicas")!.object as V1Service;
      expect(replicas.spec).toMatchObject({clusterIP: "None", selector: {"llm.paddock.dev/service": "chat"}});
      // The Role grants reading endpoint slices and annotating this service's Lease, nothing more.
      const role = plan.applies.find((a) => a.object.kind === "Role")!.object as {rules: Array<{resources: string[]; verbs: string[]; resourceNames?: string[]}>};
      expect(role.rules).toEqual([
        {apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"]},
        {apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: ["chat-demand"], verbs: ["get", "patch"]}
      ]);
    });

    it("is not Ready while no router is, and Ready (ScaledToZero) at zero replicas once one is", () => {
      const s = routed({replicas: {min: 0, max: 2}, autoscaling: {enabled: true}});
      const deployment = stored(s, {replicas: 0});
      const router = (ready: number): V1Deployment => ({apiVersion: "apps/v1", kind: "Deployment", metadata: {name: "chat-router", namespace: "ns", generation: 1}, status: {readyReplicas: ready}});
      const starting = planReconcile(observe(s, {deployment, router: router(0)}), defaults, now);
      expect(condition(starting.status?.conditions, "Ready")).toMatchObject({status: "False", reason: "RouterStarting"});
      const zero = planReconcile(observe(s, {deployment, router: router(2)}), defaults, now);
      expect(condition(zero.status?.conditions, "Ready")).toMatchObject({status: "True", reason: "ScaledToZero"});
      expect(zero.status).toMatchObject({desiredReplicas: 0, routerReadyReplicas: 2});
      expect(zero.scale).toBeUndefined();
    });

    it("deletes the router's objects once routing is turned off, and the Service selects the model pods again", () => {
      const off = svc();
      const router: V1Deployment = {apiVersion: "apps/v1", kind: "Deployment", metadata: {name: "chat-router", namespace: "ns"}};
      const plan = planReconcile(observe(off, {router}), defaults, now);
      expect(plan.deletes.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual(["Deployment/chat-router", "ServiceAccount/chat-router", "Role/chat-router", "RoleBinding/chat-router", "Lease/chat-demand"]);
      const service = plan.applies.find((a) => a.object.metadata?.name === "chat")!;
      expect(service.object).toMatchObject({kind: "Deployment"});
      expect((plan.applies.find((a) => a.object.kind === "Service" && a.object.metadata?.name === "chat")!.object as V1Service).spec?.selector).toEqual({"llm.paddock.dev/service": "chat"});
    });
  });
});
