import {ListWatch, Watch, type KubeConfig, type KubernetesObject, type V1Deployment, type V1Job, type V1PersistentVolumeClaim, type V1Pod, type V1PodDisruptionBudget, type V1Service} from "@kubernetes/client-node";
import {GROUP, KIND, PLURAL, VERSION} from "../api/llmservice.js";
import {MANAGED_BY, SERVICE_LABEL} from "../desired/meta.js";
import {MODEL_CACHE_LABEL} from "../desired/model-cache.js";
import {isNamespaceTerminating, type KubeClient} from "../kube/kube-client.js";
import type {ReconcileResult, WatchCache} from "./reconciler.js";
import {WorkQueue} from "./work-queue.js";

export interface ControllerObserver {
  onReconcile(result: "success" | "error", seconds: number): void;
  onQueueDepth(depth: number): void;
  onError(message: string, error: unknown): void;
}

export interface ControllerOptions {
  readonly kc: KubeConfig;
  readonly kube: KubeClient;
  /** Namespaces to watch; empty = all. */
  readonly namespaces: readonly string[];
  /** Reconciles running at once (different keys only). */
  readonly concurrency: number;
  /** Every key is reconciled again this often, whatever the watches said. */
  readonly resyncMs: number;
  readonly reconcile: (namespace: string, name: string) => Promise<ReconcileResult>;
  readonly observer: ControllerObserver;
}

type Obj = KubernetesObject & {
  metadata: {namespace?: string; name?: string; generation?: number; labels?: Record<string, string>; ownerReferences?: Array<{kind: string; name: string}>; deletionTimestamp?: unknown};
  status?: {readyReplicas?: number};
};

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

function first(informers: ReadonlyArray<ListWatch<Obj>>, namespace: string, name: string): Obj | undefined {
  for (const i of informers) {
    const o = i.get(name, namespace);
    if (o) return o;
  }
  return undefined;
}

/**
 * Watches LlmServices and the objects they own, and reconciles each changed service
 * through a de-duplicating, back-off work queue. Watches only say *which* service to look
 * at; the reconciler reads everything fresh.
 */
export class Controller {
  readonly queue: WorkQueue;
  readonly #informers: Array<ListWatch<Obj>> = [];
  readonly #services: Array<ListWatch<Obj>> = [];
  readonly #pods: Array<ListWatch<Obj>> = [];
  readonly #deployments: Array<ListWatch<Obj>> = [];
  readonly #k8sServices: Array<ListWatch<Obj>> = [];
  readonly #pdbs: Array<ListWatch<Obj>> = [];
  /** The routers' demand Leases (the wake-up signal of services at zero replicas). */
  readonly #leases: Array<ListWatch<Obj>> = [];
  /** The shared model cache's claims and download Jobs. */
  readonly #claims: Array<ListWatch<Obj>> = [];
  readonly #jobs: Array<ListWatch<Obj>> = [];
  /** Last generation seen per service: status-only updates are not worth a reconcile. */
  readonly #generations = new Map<string, number | undefined>();
  /** Ready replicas of each namespace's shared Redis, last seen. */
  readonly #redisReady = new Map<string, number>();
  #resync: NodeJS.Timeout | undefined;
  #workers: Array<Promise<void>> = [];
  #stopped = false;

  constructor(private readonly options: ControllerOptions) {
    this.queue = new WorkQueue({onDepthChange: (d) => options.observer.onQueueDepth(d)});
  }

  async start(): Promise<void> {
    const namespaces = this.options.namespaces.length > 0 ? this.options.namespaces : [undefined];
    for (const ns of namespaces) {
      const scope = ns ? `/namespaces/${ns}` : "";
      const svc = this.#watch(`/apis/${GROUP}/${VERSION}${scope}/${PLURAL}`, undefined, (o, verb) => {
        const key = keyOf(o.metadata.namespace!, o.metadata.name!);
        const seen = this.#generations.get(key);
        if (verb === "delete") this.#generations.delete(key);
        else this.#generations.set(key, o.metadata.generation);
        // Our own status writes do not change the generation: only spec changes and deletions count.
        if (verb === "update" && seen === o.metadata.generation && !o.metadata.deletionTimestamp) return [];
        return [key];
      });
      this.#services.push(svc);
      // Shared objects map to every owning service.
      const byOwners = (o: Obj) => (o.metadata.ownerReferences ?? []).filter((r) => r.kind === KIND).map((r) => keyOf(o.metadata.namespace!, r.name));
      const byLabel = (o: Obj) => (o.metadata.labels?.[SERVICE_LABEL] ? [keyOf(o.metadata.namespace!, o.metadata.labels[SERVICE_LABEL])] : []);
      // The shared Redis has no service label. Its owners' status depends only on its readiness,
      // so they are looked at again only when that changes: every owner re-applying it changes
      // the object, and waking all owners each time would make N services cost N² reconciles.
      const byLabelOrOwners = (o: Obj, verb: "add" | "update" | "delete") => {
        if (o.metadata.labels?.[SERVICE_LABEL]) return byLabel(o);
        const ready = verb === "delete" ? -1 : (o.status?.readyReplicas ?? 0);
        const ns = o.metadata.namespace!;
        if (this.#redisReady.get(ns) === ready) return [];
        this.#redisReady.set(ns, ready);
        return byOwners(o);
      };
      const managed = Object.entries(MANAGED_BY).map(([k, v]) => `${k}=${v}`).join(",");
      this.#deployments.push(this.#watch(`/apis/apps/v1${scope}/deployments`, managed, byLabelOrOwners));
      this.#k8sServices.push(this.#watch(`/api/v1${scope}/services`, managed, byLabel));
      this.#pdbs.push(this.#watch(`/apis/policy/v1${scope}/poddisruptionbudgets`, managed, byLabel));
      this.#pods.push(this.#watch(`/api/v1${scope}/pods`, SERVICE_LABEL, byLabel));
      // Shared by every service naming the model: a change concerns all its owners.
      this.#claims.push(this.#watch(`/api/v1${scope}/persistentvolumeclaims`, MODEL_CACHE_LABEL, byOwners));
      this.#jobs.push(this.#watch(`/apis/batch/v1${scope}/jobs`, MODEL_CACHE_LABEL, byOwners));
      // Read by the autoscaler every second; a change is no reason to reconcile.
      this.#leases.push(this.#watch(`/apis/coordination.k8s.io/v1${scope}/leases`, managed, () => []));
    }
    await Promise.all([...this.#informers].map((i) => i.start()));
    this.#resync = setInterval(() => this.#enqueueAll(), this.options.resyncMs);
    this.#resync.unref();
    this.#enqueueAll();
    this.#workers = Array.from({length: this.options.concurrency}, () => this.#work());
  }

  /** Stops watching and waits for running reconciles to finish. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#resync);
    this.queue.shutDown();
    await Promise.all(this.#informers.map((i) => i.stop().catch(() => {})));
    await Promise.all(this.#workers);
  }

  /**
   * Objects from the watch caches, for the reconciler and the autoscaler. The caches hold
   * what the API server sent: JSON shaped as the client's model types.
   */
  readonly cache: WatchCache = {
    llmService: (namespace, name) => first(this.#services, namespace, name),
    deployment: (namespace, name) => first(this.#deployments, namespace, name) as V1Deployment | undefined,
    service: (namespace, name) => first(this.#k8sServices, namespace, name) as V1Service | undefined,
    pdb: (namespace, name) => first(this.#pdbs, namespace, name) as V1PodDisruptionBudget | undefined,
    pods: (namespace, name) => this.#pods.flatMap((i) => i.list(namespace).filter((p) => p.metadata.labels?.[SERVICE_LABEL] === name)) as V1Pod[],
    modelCacheObjects: (namespace) => ({
      claims: this.#claims.flatMap((i) => i.list(namespace)) as V1PersistentVolumeClaim[],
      jobs: this.#jobs.flatMap((i) => i.list(namespace)) as V1Job[]
    })
  };

  /** Annotations of a Lease in the watch cache (the demand Leases are the only ones watched). */
  leaseAnnotations(namespace: string, name: string): Record<string, string> | undefined {
    return (first(this.#leases, namespace, name)?.metadata as {annotations?: Record<string, string>} | undefined)?.annotations;
  }

  /** Every LlmService in the watch cache. */
  services(): Obj[] {
    return this.#services.flatMap((i) => i.list());
  }

  #enqueueAll(): void {
    for (const informer of this.#services) for (const o of informer.list()) this.queue.add(keyOf(o.metadata.namespace!, o.metadata.name!));
  }

  #watch(path: string, labelSelector: string | undefined, keys: (o: Obj, verb: "add" | "update" | "delete") => string[]): ListWatch<Obj> {
    const {kube, kc, observer} = this.options;
    const informer = new ListWatch<Obj>(path, new Watch(kc), () => kube.list<Obj>(path, labelSelector), false, labelSelector);
    const enqueue = (verb: "add" | "update" | "delete") => (o: Obj) => {
      for (const k of keys(o, verb)) this.queue.add(k);
    };
    informer.on("add", enqueue("add"));
    informer.on("update", enqueue("update"));
    informer.on("delete", enqueue("delete"));
    informer.on("error", (error: unknown) => {
      if (this.#stopped) return;
      observer.onError(`watch ${path} failed; restarting`, error);
      setTimeout(() => void informer.start().catch((e: unknown) => observer.onError(`restarting watch ${path}`, e)), 2_000).unref();
    });
    this.#informers.push(informer);
    return informer;
  }

  async #work(): Promise<void> {
    const {reconcile, observer} = this.options;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const [namespace, name] = key.split("/") as [string, string];
      const started = performance.now();
      try {
        const result = await reconcile(namespace, name);
        this.queue.forget(key);
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        observer.onReconcile("success", (performance.now() - started) / 1000);
      } catch (error) {
        if (afterFailure(error) === "drop") {
          this.queue.forget(key);
          continue;
        }
        observer.onReconcile("error", (performance.now() - started) / 1000);
        const delay = this.queue.addRateLimited(key);
        observer.onError(`reconcile ${key} failed; retrying in ${delay} ms`, error);
      } finally {
        this.queue.done(key);
      }
    }
  }
}

/**
 * What a failed reconcile leads to. A namespace being deleted refuses every new object
 * (children deleted before their LlmService would be created again): the service goes with
 * its namespace, so there is nothing to converge to, and retrying only fills the log with
 * warnings until the namespace is gone. Anything else is retried with backoff.
 */
export function afterFailure(error: unknown): "drop" | "retry" {
  return isNamespaceTerminating(error) ? "drop" : "retry";
}
