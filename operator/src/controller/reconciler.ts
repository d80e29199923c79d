import {randomBytes} from "node:crypto";
import type {V1Deployment, V1Job, V1PersistentVolumeClaim, V1Pod, V1PodDisruptionBudget, V1Secret, V1Service} from "@kubernetes/client-node";
import {CONTAINER} from "../../../contract/index.js";
import {API_VERSION, KIND, parseLlmService, type LlmService} from "../api/llmservice.js";
import {SERVICE_LABEL} from "../desired/meta.js";
import {MODEL_CACHE_LABEL, modelCache} from "../desired/model-cache.js";
import {progressPod} from "../status/model.js";
import type {CacheObject, ModelObservation} from "./model-plan.js";
import type {ModelSizer} from "./model-size.js";
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
  /** Learns model lengths for the claims the operator creates. */
  readonly sizer?: ModelSizer;
}

/** Read access to the controller's watch caches. */
export interface WatchCache {
  llmService(namespace: string, name: string): unknown;
  deployment(namespace: string, name: string): V1Deployment | undefined;
  service(namespace: string, name: string): V1Service | undefined;
  pdb(namespace: string, name: string): V1PodDisruptionBudget | undefined;
  /** The service's pods. */
  pods(namespace: string, name: string): readonly V1Pod[];
  /** The model cache's claims and Jobs in a namespace (labelled llm.paddock.dev/model-cache). */
  modelCacheObjects(namespace: string): {claims: readonly V1PersistentVolumeClaim[]; jobs: readonly V1Job[]};
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
    applied: deps.applied ?? new Map(),
    ...(await observeModel(deps, svc))
  };
}

/**
 * The shared model cache: its claim and Job, the Job's pods, the running pod's last log
 * lines (progress, through pods/log: the download pod itself needs no API access), and the
 * model's length when a claim must still be sized.
 */
async function observeModel(deps: ReconcilerDeps, svc: LlmService): Promise<{model?: ModelObservation}> {
  const {kube} = deps;
  const {namespace} = svc.metadata;
  const {claims, jobs} = deps.cache
    ? deps.cache.modelCacheObjects(namespace)
    : {
        claims: (await kube.list<V1PersistentVolumeClaim>(resourcePath("v1", "PersistentVolumeClaim", namespace), MODEL_CACHE_LABEL)).items,
        jobs: (await kube.list<V1Job>(resourcePath("batch/v1", "Job", namespace), MODEL_CACHE_LABEL)).items
      };
  const owners = (o: V1Job | V1PersistentVolumeClaim) => (o.metadata?.ownerReferences ?? []).map((r) => r.uid);
  const cacheObjects: CacheObject[] = [
    ...claims.map((o) => ({kind: "PersistentVolumeClaim" as const, name: o.metadata?.name ?? "", ownerUids: owners(o), ...(o.metadata?.resourceVersion ? {resourceVersion: o.metadata.resourceVersion} : {})})),
    ...jobs.map((o) => ({kind: "Job" as const, name: o.metadata?.name ?? "", ownerUids: owners(o), ...(o.metadata?.resourceVersion ? {resourceVersion: o.metadata.resourceVersion} : {})}))
  ];
  const cache = modelCache(svc);
  if (!cache) return cacheObjects.length > 0 ? {model: {objects: cacheObjects, claim: undefined, job: undefined, pods: [], logTail: undefined, sizeError: undefined, sizeBytes: undefined}} : {};
  const claim = cache.managedClaim
    ? claims.find((o) => o.metadata?.name === cache.claimName)
    : await kube.get<V1PersistentVolumeClaim>(resourcePath("v1", "PersistentVolumeClaim", namespace, cache.claimName));
  const job = jobs.find((o) => o.metadata?.name === cache.jobName);
  const done = (job?.status?.succeeded ?? 0) > 0;
  const pods = job && !done ? (await kube.list<V1Pod>(resourcePath("v1", "Pod", namespace), `batch.kubernetes.io/job-name=${cache.jobName}`)).items : [];
  const running = progressPod(pods);
  const logTail = running
    ? await kube.getText(`${resourcePath("v1", "Pod", namespace, running.metadata!.name!, "log")}?container=${CONTAINER.fetchModel}&tailLines=5`).catch(() => undefined)
    : undefined;
  let sizeBytes: number | undefined;
  let sizeError: string | undefined;
  if (cache.managedClaim && !claim && !svc.spec.model.cache.size && deps.sizer) {
    const size = await deps.sizer.size(svc.spec.model.uri);
    if ("bytes" in size) sizeBytes = size.bytes;
    else sizeError = size.error;
  }
  return {model: {objects: cacheObjects, claim, job, pods, logTail, sizeError, sizeBytes}};
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
  await executeModelWrites(kube, svc, plan);
}

/** The shared model cache's writes: shared objects are created once and then only gain or lose owner references. */
async function executeModelWrites(kube: KubeClient, svc: LlmService, plan: ReconcilePlan): Promise<void> {
  const {create, adopt, release, delete: del} = plan.model;
  for (const object of create) {
    try {
      await kube.create(object);
    } catch (e) {
      // Another service naming the same model was first: share it.
      if (!isConflict(e)) throw e;
      await kube.mergePatch(object, {metadata: {ownerReferences: object.metadata?.ownerReferences ?? []}});
    }
  }
  for (const object of adopt) await kube.mergePatch(object, {metadata: {ownerReferences: object.metadata?.ownerReferences ?? []}});
  await releaseModelObjects(kube, svc.metadata.uid, release, del);
}

/**
 * Lets go of shared model objects, each only if unchanged since it was read (its
 * resourceVersion): a conflict means another service changed its owners meanwhile, and the
 * watch brings the object back for a new plan. Without it, two services moving off a model
 * at once each removed themselves from reads that still listed the other: an ownerless
 * claim nothing ever collected.
 */
export async function releaseModelObjects(kube: KubeClient, uid: string, release: readonly KubeObject[], del: readonly KubeObject[]): Promise<void> {
  const conditional = async (write: Promise<unknown>) => {
    try {
      await write;
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
  };
  for (const object of release) {
    const rv = object.metadata?.resourceVersion;
    await conditional(kube.mergePatch(object, {metadata: {...(rv ? {resourceVersion: rv} : {}), ownerReferences: [{$patch: "delete", uid}]}}));
  }
  await Promise.all(del.map((o) => conditional(kube.delete(o, o.metadata?.resourceVersion ? {resourceVersion: o.metadata.resourceVersion} : undefined))));
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
