import {createHash, randomBytes} from "node:crypto";
import {API_VERSION, KIND, parseLlmService, type Condition, type LlmService} from "../api/llmservice.js";
import {desiredDeployment, type DeploymentDefaults} from "../desired/deployment.js";
import {endpoint, selectorLabels, SERVICE_LABEL} from "../desired/meta.js";
import {desiredRedis, REDIS_NAME, redisSecret, usesManagedRedis, type RedisDefaults} from "../desired/redis.js";
import {desiredPdb, desiredService} from "../desired/service.js";
import {isConflict, resourcePath, type KubeClient} from "../kube/kube-client.js";
import {nextConditions, transitions} from "../status/conditions.js";
import {podProblems, type Observation} from "../status/observe.js";
import {replicasWanted} from "../status/replicas.js";
import type {EventRecorder} from "./events.js";

/** Field managers: one for what reconcile declares, one for replica counts. */
export const FIELD_MANAGER = "paddock-operator";
export const SCALER_FIELD_MANAGER = "paddock-scaler";
/** Each service applies the shared Redis under its own manager, owning only its ownerReference. */
export const redisFieldManager = (svc: LlmService) => `paddock-redis-${svc.metadata.uid}`;

export interface ReconcilerDeps {
  readonly kube: KubeClient;
  readonly events: EventRecorder;
  readonly deployment: DeploymentDefaults;
  readonly redis: RedisDefaults;
  readonly now?: () => Date;
  /**
   * The service's pods, from the controller's watch cache; saves a LIST per reconcile.
   * Defaults to listing them from the API.
   */
  readonly podsOf?: (namespace: string, name: string) => readonly object[];
  readonly cache?: WatchCache;
  readonly applied?: AppliedMemo;
  /** Told each service's readiness after a reconcile, and `undefined` once it is gone. */
  readonly onReadiness?: (namespace: string, name: string, ready: boolean | undefined) => void;
}

/** Read access to the controller's watch caches; every lookup may miss (then the API is asked). */
export interface WatchCache {
  llmService(namespace: string, name: string): unknown;
  deployment(namespace: string, name: string): DeploymentObj | undefined;
  service(namespace: string, name: string): {metadata: {resourceVersion?: string}} | undefined;
}

/**
 * What this process last applied per object: the desired object's hash and the version the
 * API server answered with. An apply is skipped only while the watch cache still shows that
 * exact version, so any change by anyone (which bumps it) is applied over again.
 */
export type AppliedMemo = Map<string, {hash: string; version: string}>;

export interface ReconcileResult {
  /** Look again after this many ms even without a watch event (e.g. while starting). */
  readonly requeueAfterMs?: number;
}

interface DeploymentObj {
  spec?: {replicas?: number};
  metadata: {generation?: number; resourceVersion?: string; ownerReferences?: Array<{uid: string}>};
  status?: {observedGeneration?: number; replicas?: number; readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number; conditions?: Array<{type: string; status: string; reason?: string; message?: string}>};
}

/**
 * Level-triggered reconcile of one LlmService: read it, apply everything it should own
 * (server-side apply, so reapplying changes nothing and other controllers' fields are
 * left alone), set replicas through the scale subresource, then observe and write status.
 * Keeps no memory between calls.
 */
export async function reconcile(deps: ReconcilerDeps, namespace: string, name: string): Promise<ReconcileResult> {
  const {kube} = deps;
  const raw = deps.cache?.llmService(namespace, name) ?? (await kube.get<unknown>(resourcePath(API_VERSION, KIND, namespace, name)));
  // Deleted: owner references let the garbage collector remove what it owned.
  if (!raw || (raw as {metadata: {deletionTimestamp?: string}}).metadata.deletionTimestamp) {
    deps.onReadiness?.(namespace, name, undefined);
    return {};
  }
  const svc = parseLlmService(raw);

  // Independent writes go out together: a reconcile costs round trips, not their sum.
  // Applies that would change nothing are skipped (see AppliedMemo): on a 2-core test VM
  // the API server, not the operator, bounds throughput, and a no-op apply costs it as much.
  const generationOf = (o: DeploymentObj | undefined) => (o?.metadata.generation === undefined ? undefined : String(o.metadata.generation));
  const [deployment] = await Promise.all([
    applyUnlessCurrent(deps, `deployment/${namespace}/${name}`, desiredDeployment(svc, deps.deployment), FIELD_MANAGER, () => deps.cache?.deployment(namespace, name), generationOf),
    applyUnlessCurrent(deps, `service/${namespace}/${name}`, desiredService(svc), FIELD_MANAGER, () => deps.cache?.service(namespace, name), (o) => o?.metadata.resourceVersion)
  ]);
  let managedRedisReady: boolean | undefined;
  if (usesManagedRedis(svc)) {
    await ensureRedisSecret(kube, svc);
    const objects = desiredRedis(svc, deps.redis);
    const memoKey = `redis/${namespace}/${svc.metadata.uid}`;
    const cachedRedis = deps.cache?.deployment(namespace, REDIS_NAME);
    const memo = deps.applied?.get(memoKey);
    const hash = hashOf(objects);
    let redis = cachedRedis;
    if (!cachedRedis || !memo || memo.hash !== hash || memo.version !== generationOf(cachedRedis) || !cachedRedis.metadata.ownerReferences?.some((r) => r.uid === svc.metadata.uid)) {
      [redis] = await Promise.all(objects.map((obj) => kube.apply<DeploymentObj>(obj as never, redisFieldManager(svc))));
      const version = generationOf(redis);
      if (version !== undefined) deps.applied?.set(memoKey, {hash, version});
    }
    managedRedisReady = (redis?.status?.readyReplicas ?? 0) > 0;
  }

  const wanted = replicasWanted(svc, deployment.spec?.replicas);
  if (deployment.spec?.replicas !== wanted) await kube.scale(namespace, name, wanted, SCALER_FIELD_MANAGER);
  const pdb = desiredPdb(svc, wanted);
  if (pdb) await kube.apply(pdb as never, FIELD_MANAGER);
  // A PDB exists only if an earlier reconcile wanted more than one replica (recorded in status).
  else if ((svc.status?.desiredReplicas ?? 0) > 1) await kube.delete({apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: {name, namespace}});
  const pods = deps.podsOf ? deps.podsOf(namespace, name) : (await kube.list<object>(resourcePath("v1", "Pod", namespace), `${SERVICE_LABEL}=${name}`)).items;
  const observation: Observation = {
    generation: svc.metadata.generation ?? 0,
    desiredReplicas: wanted,
    deployment: {
      generation: deployment.metadata.generation ?? 0,
      observedGeneration: deployment.status?.observedGeneration ?? 0,
      replicas: deployment.status?.replicas ?? 0,
      readyReplicas: deployment.status?.readyReplicas ?? 0,
      updatedReplicas: deployment.status?.updatedReplicas ?? 0,
      conditions: deployment.status?.conditions ?? []
    },
    pods: podProblems(pods, svc.spec.resources.gpuResourceName),
    ...(managedRedisReady === undefined ? {} : {managedRedisReady})
  };
  const previous = svc.status?.conditions ?? [];
  const conditions = nextConditions(observation, previous, (deps.now ?? (() => new Date()))());
  const status = {
    observedGeneration: observation.generation,
    replicas: observation.deployment!.replicas,
    readyReplicas: observation.deployment!.readyReplicas,
    desiredReplicas: wanted,
    selector: Object.entries(selectorLabels(svc)).map(([k, v]) => `${k}=${v}`).join(","),
    endpoint: endpoint(svc),
    conditions
  };
  if (statusChanged(svc.status ?? {}, status)) await writeStatus(kube, svc, status);
  for (const c of transitions(previous, conditions)) await recordTransition(deps.events, svc, c, !previous.some((p) => p.type === c.type));
  deps.onReadiness?.(namespace, name, conditions.some((c) => c.type === "Ready" && c.status === "True"));

  const settled = conditions.every((c) => (c.type === "Ready" ? c.status === "True" : c.type === "Progressing" ? c.status === "False" : true));
  // Watches on the Deployment and Pods bring most changes; this catches the rest while converging.
  return settled ? {} : {requeueAfterMs: 5_000};
}

const hashOf = (o: unknown) => createHash("sha256").update(JSON.stringify(o)).digest("hex");

/** Server-side apply, skipped while the cached object is the one our last identical apply produced. */
async function applyUnlessCurrent<T extends {metadata: {generation?: number; resourceVersion?: string}}>(
  deps: ReconcilerDeps,
  key: string,
  desired: object,
  fieldManager: string,
  cached: () => T | undefined,
  versionOf: (o: T | undefined) => string | undefined
): Promise<T> {
  const hash = hashOf(desired);
  const memo = deps.applied?.get(key);
  const current = cached();
  if (current && memo && memo.hash === hash && memo.version === versionOf(current)) return current;
  const applied = await deps.kube.apply<T>(desired as never, fieldManager);
  const version = versionOf(applied);
  if (version !== undefined) deps.applied?.set(key, {hash, version});
  return applied;
}

/** Whether any field this reconciler owns differs from what is stored (others' fields are ignored). */
function statusChanged(current: Record<string, unknown>, next: Record<string, unknown>): boolean {
  return Object.entries(next).some(([k, v]) => {
    if (k !== "conditions") return current[k] !== v;
    const stored = (current["conditions"] as Condition[] | undefined) ?? [];
    return (v as Condition[]).some((c) => {
      const old = stored.find((s) => s.type === c.type);
      return !old || old.status !== c.status || old.reason !== c.reason || old.message !== c.message || old.observedGeneration !== c.observedGeneration;
    });
  });
}

/** Status through the status subresource, by server-side apply: no read-modify-write races. */
async function writeStatus(kube: KubeClient, svc: LlmService, status: Record<string, unknown>): Promise<void> {
  await kube.apply({apiVersion: API_VERSION, kind: KIND, metadata: {name: svc.metadata.name, namespace: svc.metadata.namespace}, status} as never, FIELD_MANAGER, {subresource: "status"});
}

/** Creates the managed Redis password once; an existing Secret is never rewritten. */
async function ensureRedisSecret(kube: KubeClient, svc: LlmService): Promise<void> {
  const path = resourcePath("v1", "Secret", svc.metadata.namespace, REDIS_NAME);
  const existing = await kube.get<{metadata: {ownerReferences?: Array<{uid: string}>}}>(path);
  if (existing?.metadata.ownerReferences?.some((r) => r.uid === svc.metadata.uid)) return;
  if (!existing) {
    try {
      await kube.create(redisSecret(svc, randomBytes(24).toString("hex")) as never);
      return;
    } catch (e) {
      if (!isConflict(e)) throw e; // another service's reconcile created it first
    }
  }
  // Own it too (the owner reference only), so it lives as long as any service using it.
  await kube.apply({apiVersion: "v1", kind: "Secret", metadata: {name: REDIS_NAME, namespace: svc.metadata.namespace, ownerReferences: (redisSecret(svc, "") as {metadata: {ownerReferences: object[]}}).metadata.ownerReferences}} as never, redisFieldManager(svc));
}

async function recordTransition(events: EventRecorder, svc: LlmService, c: Condition, isFirst: boolean): Promise<void> {
  // A new service starting out healthy is not news: no event for a first "all is well".
  if (isFirst && ((c.type === "Degraded" && c.status === "False") || c.reason === "Creating" || c.reason === "Starting")) return;
  const warning = (c.type === "Degraded" && c.status === "True") || (c.type === "Ready" && c.status === "False" && c.reason !== "Starting" && c.reason !== "Creating");
  if (c.type === "Progressing" && c.status === "True") return; // routine; the Deployment's own events cover rollouts
  await events.record(svc, {type: warning ? "Warning" : "Normal", reason: c.reason, action: `${c.type}=${c.status}`, note: c.message});
}
