import {randomBytes} from "node:crypto";
import type {V1Deployment, V1Pod, V1PodDisruptionBudget, V1Secret, V1Service} from "@kubernetes/client-node";
import {API_VERSION, KIND, parseLlmService, type LlmService} from "../api/llmservice.js";
import {SERVICE_LABEL} from "../desired/meta.js";
import {REDIS_NAME, redisSecret} from "../desired/redis.js";
import {replicasServiceName, routerName} from "../desired/router.js";
import {isConflict, KubeApiError, resourcePath, type KubeClient, type KubeObject} from "../kube/kube-client.js";
import type {EventRecorder} from "./events.js";
import {fingerprint, planReconcile, redisFieldManager, FIELD_MANAGER, SCALER_FIELD_MANAGER, statusObject, type AppliedMemo, type PlanDefaults, type ReconcileObservation, type ReconcilePlan} from "./plan.js";

export interface ReconcilerDeps extends PlanDefaults {
  readonly kube: KubeClient;
  readonly events: EventRecorder;
  readonly now?: () => Date;
  /** The controller's watch caches; every lookup may miss (then the API is asked). */
  readonly cache?: WatchCache;
  readonly applied?: AppliedMemo;
  /** Told each service's readiness after a reconcile, and `undefined` once it is gone. */
  readonly onReadiness?: (namespace: string, name: string, ready: boolean | undefined) => void;
}

/** Read access to the controller's watch caches. */
export interface WatchCache {
  llmService(namespace: string, name: string): unknown;
  deployment(namespace: string, name: string): V1Deployment | undefined;
  service(namespace: string, name: string): V1Service | undefined;
  pdb(namespace: string, name: string): V1PodDisruptionBudget | undefined;
  /** The service's pods. */
  pods(namespace: string, name: string): readonly V1Pod[];
}

export interface ReconcileResult {
  /** Look again after this many ms even without a watch event (e.g. while starting). */
  readonly requeueAfterMs?: number;
}

/**
 * Level-triggered reconcile of one LlmService: read what exists, plan (planReconcile, pure),
 * execute the plan. Keeps no memory between calls beyond the apply memo, which only saves
 * writes that would change nothing.
 *
 * An apply the API server refuses (a value the CRD let through but the Deployment's own
 * validation rejects) is reported in status as ApplyFailed, with an Event, and then thrown
 * so the work queue backs off.
 */
export async function reconcile(deps: ReconcilerDeps, namespace: string, name: string): Promise<ReconcileResult> {
  const raw = deps.cache?.llmService(namespace, name) ?? (await deps.kube.get<unknown>(resourcePath(API_VERSION, KIND, namespace, name)));
  // Deleted: owner references let the garbage collector remove what it owned.
  if (!raw || (raw as {metadata: {deletionTimestamp?: string}}).metadata.deletionTimestamp) {
    deps.onReadiness?.(namespace, name, undefined);
    return {};
  }
  const svc = parseLlmService(raw);
  const observed = await observe(deps, svc);
  const now = (deps.now ?? (() => new Date()))();
  const plan = planReconcile(observed, deps, now);
  try {
    await executeWrites(deps, svc, plan);
  } catch (error) {
    if (!(error instanceof KubeApiError) || error.status >= 500 || error.status === 409 || error.status === 429) throw error;
    // The API server said no to what we declare: tell the user where they look, then back off.
    const failed = planReconcile({...observed, applyFailed: error.message.slice(0, 900)}, deps, now);
    await finish(deps, svc, failed);
    throw error;
  }
  await finish(deps, svc, plan);
  return plan.requeueAfterMs === undefined ? {} : {requeueAfterMs: plan.requeueAfterMs};
}

async function observe(deps: ReconcilerDeps, svc: LlmService): Promise<ReconcileObservation> {
  const {namespace, name} = svc.metadata;
  const {cache, kube} = deps;
  return {
    svc,
    deployment: cache ? cache.deployment(namespace, name) : await kube.get<V1Deployment>(resourcePath("apps/v1", "Deployment", namespace, name)),
    service: cache ? cache.service(namespace, name) : await kube.get<V1Service>(resourcePath("v1", "Service", namespace, name)),
    pdb: cache ? cache.pdb(namespace, name) : await kube.get<V1PodDisruptionBudget>(resourcePath("policy/v1", "PodDisruptionBudget", namespace, name)),
    redis: cache ? cache.deployment(namespace, REDIS_NAME) : await kube.get<V1Deployment>(resourcePath("apps/v1", "Deployment", namespace, REDIS_NAME)),
    pods: cache ? cache.pods(namespace, name) : (await kube.list<V1Pod>(resourcePath("v1", "Pod", namespace), `${SERVICE_LABEL}=${name}`)).items,
    router: cache ? cache.deployment(namespace, routerName(svc)) : await kube.get<V1Deployment>(resourcePath("apps/v1", "Deployment", namespace, routerName(svc))),
    routerPdb: cache ? cache.pdb(namespace, routerName(svc)) : await kube.get<V1PodDisruptionBudget>(resourcePath("policy/v1", "PodDisruptionBudget", namespace, routerName(svc))),
    replicasService: cache ? cache.service(namespace, replicasServiceName(svc)) : await kube.get<V1Service>(resourcePath("v1", "Service", namespace, replicasServiceName(svc))),
    applied: deps.applied ?? new Map()
  };
}

/** Applies, the Redis Secret, the scale and the PDB: the writes to objects the service owns. */
async function executeWrites(deps: ReconcilerDeps, svc: LlmService, plan: ReconcilePlan): Promise<void> {
  const {kube} = deps;
  const {namespace, name} = svc.metadata;
  // Independent writes go out together: a reconcile costs round trips, not their sum.
  for (const stage of [undefined, 1]) {
    await Promise.all(
      plan.applies
        .filter((a) => a.stage === stage)
        .map(async (a) => {
          const result = await kube.apply<KubeObject>(a.object, a.fieldManager);
          if (a.key !== undefined) deps.applied?.set(a.key, {hash: a.hash, fingerprint: fingerprint(result)});
        })
    );
  }
  if (plan.ensureRedisSecret) await ensureRedisSecret(kube, svc);
  if (plan.scale !== undefined) await kube.scale(namespace, name, plan.scale, SCALER_FIELD_MANAGER);
  if (plan.pdb.action === "apply") await kube.apply(plan.pdb.object, FIELD_MANAGER);
  else if (plan.pdb.action === "delete") await kube.delete({apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: {name, namespace}});
  await Promise.all(plan.deletes.map((o) => kube.delete(o)));
}

/** Status, events and readiness: what users read. */
async function finish(deps: ReconcilerDeps, svc: LlmService, plan: ReconcilePlan): Promise<void> {
  // Status through the status subresource, by server-side apply: no read-modify-write races.
  if (plan.status) await deps.kube.apply(statusObject(svc, plan.status), FIELD_MANAGER, {subresource: "status"});
  for (const event of plan.events) await deps.events.record(svc, event);
  deps.onReadiness?.(svc.metadata.namespace, svc.metadata.name, plan.ready);
}

/** Creates the managed Redis password once; an existing Secret is never rewritten. */
async function ensureRedisSecret(kube: KubeClient, svc: LlmService): Promise<void> {
  const path = resourcePath("v1", "Secret", svc.metadata.namespace, REDIS_NAME);
  const existing = await kube.get<V1Secret>(path);
  if (existing?.metadata?.ownerReferences?.some((r) => r.uid === svc.metadata.uid)) return;
  const secret = redisSecret(svc, randomBytes(24).toString("hex"));
  if (!existing) {
    try {
      await kube.create(secret);
      return;
    } catch (e) {
      if (!isConflict(e)) throw e; // another service's reconcile created it first
    }
  }
  // Own it too (the owner reference only), so it lives as long as any service using it.
  await kube.apply({apiVersion: "v1", kind: "Secret", metadata: {name: REDIS_NAME, namespace: svc.metadata.namespace, ownerReferences: secret.metadata?.ownerReferences ?? []}}, redisFieldManager(svc));
}
