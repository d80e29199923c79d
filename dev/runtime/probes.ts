import type {Pod, Probe} from "./pod.js";

/** An HTTP probe against the pod's loopback address: 2xx and 3xx pass, as the kubelet's. */
export async function runProbe(probe: Probe, pod: Pod, listenIP: string): Promise<boolean> {
  if (!probe.httpGet) return true;
  const port = typeof probe.httpGet.port === "number" ? probe.httpGet.port : pod.spec.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === probe.httpGet!.port)?.containerPort;
  try {
    const res = await fetch(`http://${listenIP}:${port}${probe.httpGet.path ?? "/"}`, {signal: AbortSignal.timeout((probe.timeoutSeconds ?? 1) * 1000)});
    await res.arrayBuffer();
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  }
}
