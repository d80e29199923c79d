import {Agent as HttpAgent, request as httpRequest} from "node:http";
import {Agent as HttpsAgent, request as httpsRequest, type RequestOptions} from "node:https";
import type {KubeConfig} from "@kubernetes/client-node";

/** A failed API call, with the API server's status code, reason and message. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string
  ) {
    super(message);
  }
}

export const isNotFound = (e: unknown) => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown) => e instanceof KubeApiError && e.status === 409;

/** What each object kind the operator touches maps to in the REST API. */
const RESOURCES: Record<string, {group: string; resource: string; namespaced: boolean}> = {
  "apps/v1/Deployment": {group: "apis/apps/v1", resource: "deployments", namespaced: true},
  "v1/Service": {group: "api/v1", resource: "services", namespaced: true},
  "v1/Secret": {group: "api/v1", resource: "secrets", namespaced: true},
  "v1/Pod": {group: "api/v1", resource: "pods", namespaced: true},
  "policy/v1/PodDisruptionBudget": {group: "apis/policy/v1", resource: "poddisruptionbudgets", namespaced: true},
  "networking.k8s.io/v1/NetworkPolicy": {group: "apis/networking.k8s.io/v1", resource: "networkpolicies", namespaced: true},
  "llm.paddock.dev/v1alpha1/LlmService": {group: "apis/llm.paddock.dev/v1alpha1", resource: "llmservices", namespaced: true},
  "coordination.k8s.io/v1/Lease": {group: "apis/coordination.k8s.io/v1", resource: "leases", namespaced: true},
  "events.k8s.io/v1/Event": {group: "apis/events.k8s.io/v1", resource: "events", namespaced: true},
  // Only the local development runtime (dev/) registers a Node.
  "v1/Node": {group: "api/v1", resource: "nodes", namespaced: false}
};

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  metadata: {name: string; namespace?: string};
}

/** REST path of a collection, or of one object when `name` is given. */
export function resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string, subresource?: string): string {
  const r = RESOURCES[`${apiVersion}/${kind}`];
  if (!r) throw new Error(`unknown kind ${apiVersion}/${kind}`);
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `/${r.group}${ns}/${r.resource}${name ? `/${encodeURIComponent(name)}` : ""}${subresource ? `/${subresource}` : ""}`;
}

/**
 * A thin Kubernetes REST client: server-side apply (also on subresources), get, list,
 * create, delete. Credentials and TLS come from @kubernetes/client-node's KubeConfig
 * (kubeconfig file or in-cluster service account). Reports each request's verb and status.
 */
export class KubeClient {
  readonly #server: string;
  // Keep-alive: one TLS handshake per connection, not per request.
  readonly #agent: HttpAgent;

  constructor(
    private readonly kc: KubeConfig,
    private readonly onRequest: (verb: string, status: number) => void = () => {}
  ) {
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

  create<T>(obj: ObjectRef): Promise<T> {
    return this.request("POST", resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace), obj);
  }

  /** PUT with the object's resourceVersion: fails with 409 if someone else changed it first. */
  replace<T>(obj: ObjectRef): Promise<T> {
    return this.request("PUT", resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name), obj);
  }

  async delete(obj: ObjectRef): Promise<void> {
    try {
      await this.request("DELETE", resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name), {
        kind: "DeleteOptions",
        apiVersion: "v1",
        propagationPolicy: "Background"
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
  apply<T>(obj: ObjectRef, fieldManager: string, options: {subresource?: string; force?: boolean} = {}): Promise<T> {
    const path = resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name, options.subresource);
    const query = `?fieldManager=${encodeURIComponent(fieldManager)}&force=${options.force ?? true}`;
    return this.request("PATCH", path + query, obj, "application/apply-patch+yaml");
  }

  /** Sets replicas through a Deployment's scale subresource (what `kubectl scale` does). */
  scale(namespace: string, name: string, replicas: number, fieldManager: string): Promise<unknown> {
    const path = `${resourcePath("apps/v1", "Deployment", namespace, name, "scale")}?fieldManager=${encodeURIComponent(fieldManager)}`;
    return this.request("PATCH", path, {spec: {replicas}}, "application/merge-patch+json");
  }

  async request<T>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    const url = new URL(this.#server + path);
    const options: RequestOptions = {method, headers: {Accept: "application/json"}, timeout: 30_000, agent: this.#agent};
    await this.kc.applyToHTTPSOptions(options);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) Object.assign(options.headers!, {"Content-Type": contentType, "Content-Length": Buffer.byteLength(payload)});
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const {status, text} = await new Promise<{status: number; text: string}>((resolve, reject) => {
      const req = send(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8")}));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
    this.onRequest(method, status);
    if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
    let reason = "Unknown";
    let message = text;
    try {
      const s = JSON.parse(text) as {reason?: string; message?: string};
      reason = s.reason ?? reason;
      message = s.message ?? message;
    } catch {
      // not a Status object
    }
    throw new KubeApiError(status, reason, `${method} ${path}: ${status} ${message}`);
  }
}
