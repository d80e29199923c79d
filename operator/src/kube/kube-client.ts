import {Agent as HttpAgent, request as httpRequest} from "node:http";
import {Agent as HttpsAgent, request as httpsRequest, type RequestOptions} from "node:https";
import type {Socket} from "node:net";
import {TLSSocket} from "node:tls";
import type {KubeConfig, V1ObjectMeta} from "@kubernetes/client-node";

/** A failed API call, with the API server's status code, reason and message. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    /** The Status's `details.causes[].reason`s: why, where the status and reason do not say. */
    readonly causes: readonly string[] = []
  ) {
    super(message);
  }
}

export const isNotFound = (e: unknown) => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown) => e instanceof KubeApiError && e.status === 409;
/** A write refused because its namespace is being deleted (admission's NamespaceLifecycle), not for want of rights. */
export const isNamespaceTerminating = (e: unknown) => e instanceof KubeApiError && e.status === 403 && e.causes.includes("NamespaceTerminating");

/** Where a kind lives in the REST API. */
export interface ResourceInfo {
  readonly group: string;
  readonly resource: string;
  readonly namespaced: boolean;
}
export type ResourceTable = Readonly<Record<string, ResourceInfo>>;

/** What each object kind the operator touches maps to in the REST API (`<apiVersion>/<kind>`). */
export const OPERATOR_RESOURCES: ResourceTable = {
  "apps/v1/Deployment": {group: "apis/apps/v1", resource: "deployments", namespaced: true},
  "v1/Service": {group: "api/v1", resource: "services", namespaced: true},
  "v1/Secret": {group: "api/v1", resource: "secrets", namespaced: true},
  "v1/Pod": {group: "api/v1", resource: "pods", namespaced: true},
  "v1/ServiceAccount": {group: "api/v1", resource: "serviceaccounts", namespaced: true},
  "rbac.authorization.k8s.io/v1/Role": {group: "apis/rbac.authorization.k8s.io/v1", resource: "roles", namespaced: true},
  "rbac.authorization.k8s.io/v1/RoleBinding": {group: "apis/rbac.authorization.k8s.io/v1", resource: "rolebindings", namespaced: true},
  "policy/v1/PodDisruptionBudget": {group: "apis/policy/v1", resource: "poddisruptionbudgets", namespaced: true},
  "networking.k8s.io/v1/NetworkPolicy": {group: "apis/networking.k8s.io/v1", resource: "networkpolicies", namespaced: true},
  "llm.paddock.dev/v1alpha1/LlmService": {group: "apis/llm.paddock.dev/v1alpha1", resource: "llmservices", namespaced: true},
  "v1/PersistentVolumeClaim": {group: "api/v1", resource: "persistentvolumeclaims", namespaced: true},
  "batch/v1/Job": {group: "apis/batch/v1", resource: "jobs", namespaced: true},
  "coordination.k8s.io/v1/Lease": {group: "apis/coordination.k8s.io/v1", resource: "leases", namespaced: true},
  "events.k8s.io/v1/Event": {group: "apis/events.k8s.io/v1", resource: "events", namespaced: true}
};

/**
 * Any Kubernetes object, typed as @kubernetes/client-node's models are (every field
 * optional); a write checks at run time that apiVersion, kind and metadata.name are there.
 */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
}

/** REST path of a collection, or of one object when `name` is given. */
export function resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string, subresource?: string, table: ResourceTable = OPERATOR_RESOURCES): string {
  const r = table[`${apiVersion}/${kind}`];
  if (!r) throw new Error(`unknown kind ${apiVersion}/${kind}`);
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `/${r.group}${ns}/${r.resource}${name ? `/${encodeURIComponent(name)}` : ""}${subresource ? `/${subresource}` : ""}`;
}

/** Thrown instead of sending a write that the client's guard forbids (e.g. after losing the leader lease). */
export class WriteForbiddenError extends Error {
  override name = "WriteForbiddenError";
}

export interface KubeClientOptions {
  /** Told each request's verb and HTTP status. */
  readonly onRequest?: (verb: string, status: number) => void;
  /** Kinds beyond the operator's own (OPERATOR_RESOURCES), e.g. the local stack's Node. */
  readonly resources?: ResourceTable;
  /**
   * Checked before every write (POST, PUT, PATCH, DELETE); a write it refuses throws
   * WriteForbiddenError without reaching the API server. The operator passes its leader
   * elector here, so a leader that can no longer be sure of its lease writes nothing.
   */
  readonly mayWrite?: () => boolean;
  /** Sent as User-Agent, so audit logs tell instances apart. Defaults to "paddock". */
  readonly userAgent?: string;
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * A thin Kubernetes REST client: server-side apply (also on subresources), get, list,
 * create, delete. Credentials and TLS come from @kubernetes/client-node's KubeConfig
 * (kubeconfig file or in-cluster service account). Reports each request's verb and status.
 */
export class KubeClient {
  readonly #server: string;
  // Keep-alive: one TLS handshake per connection, not per request.
  readonly #agent: HttpAgent;
  readonly #resources: ResourceTable;

  constructor(
    private readonly kc: KubeConfig,
    private readonly options: KubeClientOptions = {}
  ) {
    this.#resources = {...OPERATOR_RESOURCES, ...options.resources};
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.#server = cluster.server.replace(/\/$/, "");
    this.#agent = this.#server.startsWith("https:") ? new HttpsAgent({keepAlive: true, maxSockets: 16}) : new HttpAgent({keepAlive: true, maxSockets: 16});
  }

  close(): void {
    this.#agent.destroy();
  }

  async get<T>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>("GET", path);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  list<T>(path: string, labelSelector?: string): Promise<{items: T[]; metadata: {resourceVersion: string}}> {
    return this.request("GET", labelSelector ? `${path}?labelSelector=${encodeURIComponent(labelSelector)}` : path);
  }

  /** REST path of an object (or of its collection), from its apiVersion, kind and metadata. */
  pathOf(obj: KubeObject, options: {collection?: boolean; subresource?: string} = {}): string {
    const {apiVersion, kind, metadata} = obj;
    if (!apiVersion || !kind || !metadata?.name) throw new Error(`object needs apiVersion, kind and metadata.name: ${JSON.stringify(obj).slice(0, 200)}`);
    return resourcePath(apiVersion, kind, metadata.namespace, options.collection ? undefined : metadata.name, options.subresource, this.#resources);
  }

  create<T = unknown, O extends KubeObject = KubeObject>(obj: O): Promise<T> {
    return this.request("POST", this.pathOf(obj, {collection: true}), obj);
  }

  /** PUT with the object's resourceVersion: fails with 409 if someone else changed it first. */
  replace<T = unknown, O extends KubeObject = KubeObject>(obj: O): Promise<T> {
    return this.request("PUT", this.pathOf(obj), obj);
  }

  /** Deletes (its dependents in the background); with `preconditions`, only if the object is still as read (else 409). */
  async delete(obj: KubeObject, preconditions?: {resourceVersion?: string; uid?: string}): Promise<void> {
    try {
      await this.request("DELETE", this.pathOf(obj), {
        kind: "DeleteOptions",
        apiVersion: "v1",
        propagationPolicy: "Background",
        ...(preconditions ? {preconditions} : {})
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /**
   * Server-side apply: the object states this field manager's whole intent; fields it
   * stops stating are released. `force` takes over fields another manager set (the
   * operator is authoritative for what it declares).
   */
  apply<T = unknown, O extends KubeObject = KubeObject>(obj: O, fieldManager: string, options: {subresource?: string; force?: boolean} = {}): Promise<T> {
    const path = this.pathOf(obj, options.subresource ? {subresource: options.subresource} : {});
    const query = `?fieldManager=${encodeURIComponent(fieldManager)}&force=${options.force ?? true}`;
    return this.request("PATCH", path + query, obj, "application/apply-patch+yaml");
  }

  /** Sets replicas through a Deployment's scale subresource (what `kubectl scale` does). */
  scale(namespace: string, name: string, replicas: number, fieldManager: string): Promise<unknown> {
    const path = `${resourcePath("apps/v1", "Deployment", namespace, name, "scale")}?fieldManager=${encodeURIComponent(fieldManager)}`;
    return this.request("PATCH", path, {spec: {replicas}}, "application/merge-patch+json");
  }

  /**
   * Merges into a built-in object by its strategic merge keys: an owner reference added or
   * (with `$patch: delete`) removed by uid, leaving the other owners' alone.
   */
  mergePatch<T = unknown>(obj: KubeObject, patch: unknown): Promise<T> {
    return this.request("PATCH", this.pathOf(obj), patch, "application/strategic-merge-patch+json");
  }

  /** A plain-text GET (a pod's log); undefined when the object is gone. */
  async getText(path: string): Promise<string | undefined> {
    try {
      return await this.request<string>("GET", path, undefined, "application/json", true);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async request<T>(method: string, path: string, body?: unknown, contentType = "application/json", asText = false): Promise<T> {
    const mayWrite = WRITES.has(method) ? this.options.mayWrite : undefined;
    const forbidden = () => new WriteForbiddenError(`${method} ${path}: refused, this instance may not write now (not the leader)`);
    if (mayWrite && !mayWrite()) throw forbidden();
    const url = new URL(this.#server + path);
    const options: RequestOptions = {method, headers: {Accept: asText ? "*/*" : "application/json", "User-Agent": this.options.userAgent ?? "paddock"}, timeout: 30_000, agent: this.#agent};
    await this.kc.applyToHTTPSOptions(options);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) Object.assign(options.headers!, {"Content-Type": contentType, "Content-Length": Buffer.byteLength(payload)});
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const {status, text: answer} = await new Promise<{status: number; text: string}>((resolve, reject) => {
      const req = send(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8")}));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      if (!mayWrite) {
        req.end(payload);
        return;
      }
      // A write asks the guard again at the last moment, once its connection is open: a
      // process frozen after the first check (a leader stopped by SIGSTOP mid-reconcile,
      // while its lease passes to another) must not send it when it wakes.
      req.once("socket", (socket: Socket) => {
        const go = () => (mayWrite() ? req.end(payload) : req.destroy(forbidden()));
        if (!connecting(socket)) go();
        else socket.once(socket instanceof TLSSocket ? "secureConnect" : "connect", go);
      });
    });
    this.options.onRequest?.(method, status);
    if (status >= 200 && status < 300) return (asText ? answer : answer ? JSON.parse(answer) : undefined) as T;
    let reason = "Unknown";
    let message = answer;
    let causes: string[] = [];
    try {
      const s = JSON.parse(answer) as {reason?: string; message?: string; details?: {causes?: Array<{reason?: string}>}};
      reason = s.reason ?? reason;
      message = s.message ?? message;
      causes = (s.details?.causes ?? []).flatMap((c) => (c.reason ? [c.reason] : []));
    } catch {
      // not a Status object
    }
    throw new KubeApiError(status, reason, `${method} ${path}: ${status} ${message}`, causes);
  }
}

/** Whether a socket is still connecting: TCP, or for TLS the handshake ("unknown" until it is done). */
function connecting(socket: Socket): boolean {
  if (socket.connecting) return true;
  return socket instanceof TLSSocket && (socket.getProtocol() === null || socket.getProtocol() === "unknown");
}
