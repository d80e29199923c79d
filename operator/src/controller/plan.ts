import {createHash} from "node:crypto";
import type {V1Deployment, V1ObjectMeta, V1Pod, V1PodDisruptionBudget, V1Service} from "@kubernetes/client-node";
import {API_VERSION, KIND, type Condition, type LlmService, type LlmServiceStatus} from "../api/llmservice.js";
import type {DeploymentDefaults} from "../desired/defaults.js";
import {desiredDeployment} from "../desired/deployment.js";
import {endpoint, selectorLabels} from "../desired/meta.js";
import {desiredRedis, usesManagedRedis, type RedisDefaults} from "../desired/redis.js";
import {demandLeaseName, desiredRouterAccess, desiredRouterDeployment, desiredRouterPdb, routerName, routingEnabled, type RouterDefaults} from "../desired/router.js";
import {desiredPdb, desiredReplicasService, desiredService} from "../desired/service.js";
import type {KubeObject} from "../kube/kube-client.js";
import {nextConditions, transitions} from "../status/conditions.js";
import {podProblems, type Observation} from "../status/observe.js";
import {replicasWanted} from "../status/replicas.js";
import type {EventSpec} from "./events.js";
import {planModel, type ModelObservation, type ModelWrites} from "./model-plan.js";

/** Field managers: one for what reconcile declares, one for replica counts. */
export const FIELD_MANAGER = "paddock-operator";
export const SCALER_FIELD_MANAGER = "paddock-scaler";
/** Each service applies the shared Redis under its own manager, owning only its ownerReference. */
export const redisFieldManager = (svc: LlmService) => `paddock-redis-${svc.metadata.uid}`;

/**
 * What this process last applied per object: the desired object's hash and the fingerprint
 * of the object the API server answered with. An apply is skipped only while the watch
 * cache still shows an object with that fingerprint, so an edit by anyone to what the
 * operator declares (spec, labels, annotations, owner references) is applied over again.
 */
export type AppliedMemo = Map<string, AppliedRecord>;
export interface AppliedRecord {
  readonly hash: string;
  readonly fingerprint: string;
}

/** Everything a reconcile of one service reads, from the watch caches and this process' memo. */
export interface ReconcileObservation {
  readonly svc: LlmService;
  readonly deployment: V1Deployment | undefined;
  readonly service: V1Service | undefined;
  readonly pdb: V1PodDisruptionBudget | undefined;
  /** The namespace's managed Redis Deployment, when the service uses it. */
  readonly redis: V1Deployment | undefined;
  readonly pods: readonly V1Pod[];
  /** The router Deployment, its PDB and the model pods' own Service. */
  readonly router: V1Deployment | undefined;
  readonly routerPdb: V1PodDisruptionBudget | undefined;
  readonly replicasService: V1Service | undefined;
  readonly applied: ReadonlyMap<string, AppliedRecord>;
  /** Set when applying an object failed: the API server's message (reason ApplyFailed). */
  readonly applyFailed?: string;
  /** The shared model cache (spec.model.cache.mode Shared, downloaded models). */
  readonly model?: ModelObservation;
}

/** One server-side apply, with what to remember of it afterwards. */
export interface PlannedApply {
  /** Key in the AppliedMemo; undefined for objects whose applies are not remembered. */
  readonly key: string | undefined;
  readonly object: KubeObject;
  readonly fieldManager: string;
  readonly hash: string;
  /** Applied after every stage-0 apply succeeded (a RoleBinding after its Role). Defaults to 0. */
  readonly stage?: 1;
}

export interface ReconcilePlan {
  /** Applies that would change something; they are independent and may run together. */
  readonly applies: readonly PlannedApply[];
  /** Make sure the managed Redis password Secret exists and this service owns it too. */
  readonly ensureRedisSecret: boolean;
  /** Replicas to set through the scale subresource, when they differ. */
  readonly scale: number | undefined;
  readonly pdb: {readonly action: "apply"; readonly object: V1PodDisruptionBudget} | {readonly action: "delete"} | {readonly action: "none"};
  /** Objects to delete (the router's, once routing is turned off); a missing one is fine. */
  readonly deletes: readonly KubeObject[];
  /** The shared model claim and download Job: create, share, let go. */
  readonly model: ModelWrites;
  /** The status to write (by SSA on the status subresource); undefined when nothing changed. */
  readonly status: LlmServiceStatus | undefined;
  readonly events: readonly EventSpec[];
  /** Whether the service is Ready (serving at least one replica). */
  readonly ready: boolean;
  /** Look again after this many ms without a watch event (while converging). */
  readonly requeueAfterMs: number | undefined;
}

export interface PlanDefaults {
  readonly deployment: DeploymentDefaults;
  readonly redis: RedisDefaults;
  readonly router: RouterDefaults;
}

/** Look again this soon while a service converges; watches bring most changes earlier. */
export const CONVERGING_REQUEUE_MS = 5_000;

/**
 * The whole reconcile of one LlmService as data: which objects to apply (skipping those
 * whose last apply is still what the cache holds), the replica count, the PDB, the status
 * and the events. Pure: the same observation and time give the same plan.
 */
export function planReconcile(observed: ReconcileObservation, defaults: PlanDefaults, now: Date): ReconcilePlan {
  const {svc} = observed;
  const {namespace, name} = svc.metadata;
  const applies: PlannedApply[] = [];
  const podsSeen = podProblems(observed.pods, svc.spec.resources.gpuResourceName);
  const model = planModel(svc, observed.model, observed.deployment, podsSeen, defaults.deployment);
  if (observed.applyFailed === undefined) {
    const want = (key: string, object: KubeObject, fieldManager: string, current: KubeObject | undefined) => {
      const hash = hashOf(object);
      const memo = observed.applied.get(key);
      if (!current || !memo || memo.hash !== hash || memo.fingerprint !== fingerprint(current)) applies.push({key, object, fieldManager, hash});
    };
    // Replicas start only once the model is there; a Deployment serving an older model keeps
    // serving it, unchanged, until the new one is.
    if (model.deploymentAllowed) want(`deployment/${namespace}/${name}`, desiredDeployment(svc, defaults.deployment), FIELD_MANAGER, observed.deployment);
    want(`service/${namespace}/${name}`, desiredService(svc), FIELD_MANAGER, observed.service);
    want(`service/${namespace}/${name}-replicas`, desiredReplicasService(svc), FIELD_MANAGER, observed.replicasService);
    if (routingEnabled(svc)) {
      // The router's account, Role, RoleBinding and demand Lease have no watch: they are
      // applied again whenever their declaration changes or the router Deployment is new.
      const access = desiredRouterAccess(svc);
      const hash = hashOf(access);
      const memo = observed.applied.get(routerAccessKey(svc));
      // The RoleBinding goes last, once its Role exists (the API server checks the Role it
      // grants), and carries the group's memo: a group that failed half-way is applied again.
      if (!observed.router || !memo || memo.hash !== hash) {
        for (const object of access) {
          const binding = object.kind === "RoleBinding";
          applies.push({key: binding ? routerAccessKey(svc) : undefined, object, fieldManager: FIELD_MANAGER, hash, ...(binding ? {stage: 1 as const} : {})});
        }
      }
      want(`deployment/${namespace}/${routerName(svc)}`, desiredRouterDeployment(svc, defaults.router), FIELD_MANAGER, observed.router);
      const routerPdb = desiredRouterPdb(svc);
      if (routerPdb) want(`pdb/${namespace}/${routerName(svc)}`, routerPdb, FIELD_MANAGER, observed.routerPdb);
    }
    if (usesManagedRedis(svc)) {
      // The Redis objects go together under one key: this service's owner reference on the
      // Deployment stands for all three (the GC removes them with their last owner).
      const objects = desiredRedis(svc, defaults.redis);
      const hash = hashOf(objects);
      const memo = observed.applied.get(redisKey(svc));
      const owned = observed.redis?.metadata?.ownerReferences?.some((r) => r.uid === svc.metadata.uid) ?? false;
      if (!observed.redis || !owned || !memo || memo.hash !== hash || memo.fingerprint !== fingerprint(observed.redis)) {
        objects.forEach((object, i) => applies.push({key: i === 0 ? redisKey(svc) : undefined, object, fieldManager: redisFieldManager(svc), hash}));
      }
    }
  }

  const current = observed.deployment?.spec?.replicas;
  const wanted = replicasWanted(svc, current);
  const deploymentWillExist = observed.deployment !== undefined || model.deploymentAllowed;
  const pdbObject = deploymentWillExist ? desiredPdb(svc, wanted) : undefined;
  // Decided from what exists, not from what an earlier reconcile wanted: a PDB left by a
  // crash between two writes, or created by hand under this name, still goes.
  const pdb: ReconcilePlan["pdb"] = pdbObject
    ? samePdb(observed.pdb, pdbObject)
      ? {action: "none"}
      : {action: "apply", object: pdbObject}
    : observed.pdb
      ? {action: "delete"}
      : {action: "none"};

  const deletes: KubeObject[] = [];
  if (observed.applyFailed === undefined) {
    const ref = (apiVersion: string, kind: string, objectName: string): KubeObject => ({apiVersion, kind, metadata: {name: objectName, namespace}});
    if (!routingEnabled(svc) && observed.router) {
      deletes.push(
        ref("apps/v1", "Deployment", routerName(svc)),
        ref("v1", "ServiceAccount", routerName(svc)),
        ref("rbac.authorization.k8s.io/v1", "Role", routerName(svc)),
        ref("rbac.authorization.k8s.io/v1", "RoleBinding", routerName(svc)),
        ref("coordination.k8s.io/v1", "Lease", demandLeaseName(svc))
      );
    }
    if (observed.routerPdb && !desiredRouterPdb(svc)) deletes.push(ref("policy/v1", "PodDisruptionBudget", routerName(svc)));
  }

  const d = observed.deployment;
  const observation: Observation = {
    generation: svc.metadata.generation ?? 0,
    desiredReplicas: wanted,
    ...(d
      ? {
          deployment: {
            generation: d.metadata?.generation ?? 0,
            observedGeneration: d.status?.observedGeneration ?? 0,
            replicas: d.status?.replicas ?? 0,
            readyReplicas: d.status?.readyReplicas ?? 0,
            updatedReplicas: d.status?.updatedReplicas ?? 0,
            conditions: (d.status?.conditions ?? []).map((c) => ({type: c.type, status: c.status, ...(c.reason ? {reason: c.reason} : {}), ...(c.message ? {message: c.message} : {})}))
          }
        }
      : {}),
    pods: podsSeen,
    model: model.readiness,
    ...(usesManagedRedis(svc) ? {managedRedisReady: (observed.redis?.status?.readyReplicas ?? 0) > 0} : {}),
    ...(routingEnabled(svc) ? {routerReadyReplicas: observed.router?.status?.readyReplicas ?? 0} : {}),
    ...(observed.applyFailed !== undefined ? {applyFailed: observed.applyFailed} : {})
  };
  const previous = svc.status?.conditions ?? [];
  const conditions = nextConditions(observation, previous, now);
  const status: LlmServiceStatus = {
    observedGeneration: observation.generation,
    replicas: observation.deployment?.replicas ?? 0,
    readyReplicas: observation.deployment?.readyReplicas ?? 0,
    desiredReplicas: wanted,
    selector: Object.entries(selectorLabels(svc)).map(([k, v]) => `${k}=${v}`).join(","),
    endpoint: endpoint(svc),
    ...(routingEnabled(svc) ? {routerReadyReplicas: observed.router?.status?.readyReplicas ?? 0} : {}),
    ...(model.status ? {model: model.status} : {}),
    conditions
  };
  const events = transitions(previous, conditions).flatMap((c) => {
    const e = eventFor(c, !previous.some((p) => p.type === c.type));
    return e ? [e] : [];
  });
  const downloading = model.status !== undefined && model.status.phase !== "Ready" && model.status.phase !== "Failed";
  const settled = !downloading && conditions.every((c) => (c.type === "Ready" ? c.status === "True" : c.type === "Progressing" ? c.status === "False" : c.type === "Degraded" ? c.reason !== "ApplyFailed" : true));
  return {
    applies,
    ensureRedisSecret: usesManagedRedis(svc) && observed.applyFailed === undefined,
    scale: observed.applyFailed === undefined && deploymentWillExist && current !== wanted ? wanted : undefined,
    pdb: observed.applyFailed === undefined ? pdb : {action: "none"},
    deletes,
    model: observed.applyFailed === undefined ? model.writes : {create: [], adopt: [], release: [], delete: []},
    status: statusChanged(svc.status ?? {}, status) ? status : undefined,
    events,
    ready: conditions.some((c) => c.type === "Ready" && c.status === "True"),
    // An apply failure is retried with the work queue's back-off instead.
    requeueAfterMs: settled || observed.applyFailed !== undefined ? undefined : CONVERGING_REQUEUE_MS
  };
}

/** The status object as written: the LlmService's status subresource, applied under FIELD_MANAGER. */
export function statusObject(svc: LlmService, status: LlmServiceStatus): KubeObject & {status: LlmServiceStatus} {
  return {apiVersion: API_VERSION, kind: KIND, metadata: {name: svc.metadata.name, namespace: svc.metadata.namespace}, status};
}

export const routerAccessKey = (svc: LlmService) => `router-access/${svc.metadata.namespace}/${svc.metadata.name}`;

export const redisKey = (svc: LlmService) => `redis/${svc.metadata.namespace}/${svc.metadata.uid}`;

export const hashOf = (o: unknown) => createHash("sha256").update(JSON.stringify(o)).digest("hex");

/**
 * What the operator declares of an object as stored: its generation (spec changes) or,
 * for kinds without one, its resourceVersion, plus labels, annotations and owner
 * references (which change no generation). Status-only updates leave it unchanged.
 */
export function fingerprint(object: KubeObject): string {
  const m = (object.metadata ?? {}) as V1ObjectMeta;
  const version = m.generation !== undefined ? `g${m.generation}` : `r${m.resourceVersion ?? ""}`;
  return hashOf([version, m.labels ?? {}, m.annotations ?? {}, (m.ownerReferences ?? []).map((r) => r.uid)]);
}

function samePdb(current: V1PodDisruptionBudget | undefined, desired: V1PodDisruptionBudget): boolean {
  if (!current) return false;
  const labels = desired.metadata?.labels ?? {};
  return (
    current.spec?.maxUnavailable === desired.spec?.maxUnavailable &&
    JSON.stringify(current.spec?.selector?.matchLabels ?? {}) === JSON.stringify(desired.spec?.selector?.matchLabels ?? {}) &&
    Object.entries(labels).every(([k, v]) => current.metadata?.labels?.[k] === v) &&
    (current.metadata?.ownerReferences ?? []).some((r) => desired.metadata?.ownerReferences?.some((o) => o.uid === r.uid))
  );
}

/** Whether any field this reconciler owns differs from what is stored (others' fields are ignored). */
export function statusChanged(current: LlmServiceStatus, next: LlmServiceStatus): boolean {
  return (Object.entries(next) as Array<[keyof LlmServiceStatus, unknown]>).some(([k, v]) => {
    if (k !== "conditions") return typeof v === "object" ? JSON.stringify(current[k]) !== JSON.stringify(v) : current[k] !== v;
    const stored = current.conditions ?? [];
    return (v as Condition[]).some((c) => {
      const old = stored.find((s) => s.type === c.type);
      return !old || old.status !== c.status || old.reason !== c.reason || old.message !== c.message || old.observedGeneration !== c.observedGeneration;
    });
  });
}

/**
 * The Event a condition transition becomes, if any. A new service starting out healthy is
 * not news, and rollouts are covered by the Deployment's own events.
 */
export function eventFor(c: Condition, isFirst: boolean): EventSpec | undefined {
  if (isFirst && ((c.type === "Degraded" && c.status === "False") || c.reason === "Creating" || c.reason === "Starting" || c.reason === "Pending" || c.reason === "NoDownload" || c.reason === "PerPodDownload")) return undefined;
  if (c.type === "Progressing" && c.status === "True") return undefined;
  // The model's progress is news (downloading, verifying, done); its failures are warnings.
  const modelWorking = c.type === "ModelReady" && ["Pending", "Downloading", "Verifying"].includes(c.reason);
  const warning =
    (c.type === "Degraded" && c.status === "True") ||
    (c.type === "Ready" && c.status === "False" && c.reason !== "Starting" && c.reason !== "Creating" && c.reason !== "DownloadingModel") ||
    (c.type === "ModelReady" && c.status === "False" && !modelWorking);
  return {type: warning ? "Warning" : "Normal", reason: c.reason, action: `${c.type}=${c.status}`, note: c.message};
}
