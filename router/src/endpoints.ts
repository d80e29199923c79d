import {DiscoveryV1Api, ListWatch, Watch, type KubeConfig, type V1EndpointSlice} from "@kubernetes/client-node";
import {HTTP_PORT_NAME} from "../../contract/index.js";
import type {Replica} from "./balancer.js";

/** Label the EndpointSlice controller puts on every slice of a Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/**
 * Ready replicas from a Service's EndpointSlices: endpoints that are ready and not
 * terminating (a terminating pod is draining: it gets no new requests), one per address,
 * named by their pod. Sorted, so the same endpoints always give the same list.
 */
export function replicasFromSlices(slices: readonly V1EndpointSlice[]): Replica[] {
  const byAddress = new Map<string, Replica>();
  for (const slice of slices) {
    const port = slice.ports?.find((p) => p.name === HTTP_PORT_NAME)?.port ?? slice.ports?.[0]?.port;
    if (port === undefined || port === null) continue;
    for (const e of slice.endpoints ?? []) {
      if (e.conditions?.ready === false || e.conditions?.terminating === true) continue;
      const address = e.addresses[0];
      if (!address) continue;
      const host = address.includes(":") ? `[${address}]` : address;
      byAddress.set(address, {name: e.targetRef?.name ?? address, url: `http://${host}:${port}`});
    }
  }
  return [...byAddress.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface ReplicaSource {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Watches the EndpointSlices of the model pods' Service (list, then watch, relisting after
 * errors) and hands every change to `onReplicas`. Needs get/list/watch on endpointslices in
 * its namespace, which the operator's Role grants.
 */
export function endpointSliceSource(kc: KubeConfig, namespace: string, service: string, onReplicas: (replicas: Replica[]) => void, onError: (error: unknown) => void): ReplicaSource {
  const api = kc.makeApiClient(DiscoveryV1Api);
  const selector = `${SERVICE_NAME_LABEL}=${service}`;
  const path = `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`;
  const informer = new ListWatch<V1EndpointSlice>(path, new Watch(kc), () => api.listNamespacedEndpointSlice({namespace, labelSelector: selector}), false, selector);
  const publish = () => onReplicas(replicasFromSlices(informer.list(namespace)));
  let stopped = false;
  for (const verb of ["add", "update", "delete"] as const) informer.on(verb, publish);
  informer.on("connect", publish);
  informer.on("error", (error: unknown) => {
    if (stopped) return;
    onError(error);
    // Keep routing to what was last seen while the watch is re-established.
    setTimeout(() => void informer.start().catch(onError), 2_000).unref();
  });
  return {
    async start() {
      await informer.start();
      publish();
    },
    async stop() {
      stopped = true;
      await informer.stop().catch(() => {});
    }
  };
}

/** A fixed list of replicas (ROUTER_STATIC_ENDPOINTS): outside Kubernetes, and in benchmarks. */
export function staticSource(urls: readonly string[], onReplicas: (replicas: Replica[]) => void): ReplicaSource {
  return {
    start: async () => onReplicas(urls.map((url) => ({name: new URL(url).host, url: url.replace(/\/$/, "")}))),
    stop: async () => {}
  };
}
