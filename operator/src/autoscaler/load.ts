import {METRIC} from "../../../contract/index.js";
import type {Load} from "./recommender.js";
import {PrometheusError, type Sample} from "./prometheus.js";

/** A pod of the service, reduced to what the load reading needs. */
export interface ServingPod {
  readonly name: string;
  /** `http://<podIP>:<port>` of the server container. */
  readonly url: string;
}

export interface LoadSources {
  /** Instant query against the service's Prometheus. */
  readonly query: (promql: string) => Promise<Sample[]>;
  /** The pod's own `/metrics` text (the fallback when Prometheus fails). */
  readonly podMetrics: (pod: ServingPod) => Promise<string>;
}

/** A regex matching the name literally, written inside a PromQL double-quoted string (which unescapes once). */
const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replaceAll("\\", "\\\\");

/**
 * The default query: in-flight requests per pod (queued ones included: the server counts a
 * request from arrival to its last byte), over exactly the service's ready pods.
 */
export function defaultQuery(namespace: string, pods: readonly ServingPod[]): string {
  const names = pods.map((p) => escapeRegex(p.name)).join("|");
  return `sum by (pod) (${METRIC.activeRequests}{namespace="${namespace}",pod=~"${names}"})`;
}

/** A user's `spec.autoscaling.query` with `{{namespace}}`, `{{name}}` and `{{pods}}` (a regex of pod names) filled in. */
export function expandQuery(template: string, namespace: string, name: string, pods: readonly ServingPod[]): string {
  return template
    .replaceAll("{{namespace}}", namespace)
    .replaceAll("{{name}}", name)
    .replaceAll("{{pods}}", pods.map((p) => escapeRegex(p.name)).join("|"));
}

/**
 * Reads the service's load: from Prometheus, else (Prometheus down, the query refused or
 * empty) from each pod's /metrics. Never throws; failures come back as `ok: false` with a
 * reason and a message meant for `kubectl describe`.
 */
export async function readLoad(sources: LoadSources, namespace: string, name: string, pods: readonly ServingPod[], customQuery: string | undefined): Promise<Load> {
  if (pods.length === 0) return {ok: false, reason: "NoReadyPods", message: "no pod is ready yet, so there is no load to read"};
  let failure: {reason: string; message: string};
  try {
    const samples = await sources.query(customQuery ? expandQuery(customQuery, namespace, name, pods) : defaultQuery(namespace, pods));
    if (customQuery) {
      if (samples.length > 0) return {ok: true, activeRequests: sum(samples.map((s) => s.value)), complete: true, source: "spec.autoscaling.query"};
      failure = {reason: "NoMetrics", message: "spec.autoscaling.query returned no samples"};
    } else {
      const byPod = new Map(samples.map((s) => [s.labels["pod"] ?? "", s.value]));
      const seen = pods.filter((p) => byPod.has(p.name));
      if (seen.length > 0) return fromPods(byPod, seen.length === pods.length, `Prometheus, ${seen.length}/${pods.length} pods`);
      failure = {
        reason: "NoMetrics",
        message: `Prometheus has no ${METRIC.activeRequests} for the ${pods.length} ready pod(s) in ${namespace}: check that it scrapes them (the pods' prometheus.io annotations, or the chart's PodMonitor) with namespace and pod labels`
      };
    }
  } catch (error) {
    const e = error instanceof PrometheusError ? error : new PrometheusError(String(error), "unreachable");
    failure = {reason: e.kind === "unreachable" ? "PrometheusUnavailable" : "InvalidQuery", message: e.message};
  }
  return fallback(sources, pods, failure);
}

async function fallback(sources: LoadSources, pods: readonly ServingPod[], failure: {reason: string; message: string}): Promise<Load> {
  const answers = await Promise.allSettled(pods.map(async (p) => [p.name, activeRequestsIn(await sources.podMetrics(p))] as const));
  const byPod = new Map(answers.flatMap((a) => (a.status === "fulfilled" && a.value[1] !== undefined ? [[a.value[0], a.value[1]] as const] : [])));
  if (byPod.size === 0) return {ok: false, reason: failure.reason, message: `${failure.message}; the pods' /metrics are not reachable either`};
  return {...fromPods(byPod, byPod.size === pods.length, `pods' /metrics, ${byPod.size}/${pods.length} pods`), fallbackFrom: failure};
}

function fromPods(perPod: ReadonlyMap<string, number>, complete: boolean, source: string): Load & {ok: true} {
  return {ok: true, activeRequests: sum([...perPod.values()]), perPod, complete, source};
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

/** `llm_active_requests` from a Prometheus text exposition; undefined when absent. */
export function activeRequestsIn(text: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(METRIC.activeRequests)) continue;
    const rest = line.slice(METRIC.activeRequests.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const value = Number(rest.slice(rest.lastIndexOf(rest.includes("}") ? "}" : " ") + 1).trim().split(" ")[0]);
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}
