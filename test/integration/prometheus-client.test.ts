import {PrometheusProcess} from "../../dev/processes/prometheus.js";
import {readLoad, type ServingPod} from "../../operator/src/autoscaler/load.js";
import {PrometheusClient, PrometheusError} from "../../operator/src/autoscaler/prometheus.js";
import {eventually} from "../helpers/cluster.js";
import {freePort} from "../../dev/processes/ports.js";
import {ServerProcess} from "../../dev/processes/server.js";

/** The autoscaler's load reading against Debian's Prometheus scraping a real inference server. */
describe("autoscaler load reading (real Prometheus)", () => {
  let prometheus: PrometheusProcess;
  let server: ServerProcess;
  const pod: ServingPod = {name: "chat-abc12", url: ""};

  beforeAll(async () => {
    [prometheus, server] = await Promise.all([freePort().then((p) => PrometheusProcess.start(p, 1)), ServerProcess.start({MODEL_NAME: "tiny"})]);
    Object.assign(pod, {url: server.url});
    prometheus.setTargets([{address: new URL(server.url).host, namespace: "team", pod: pod.name}]);
  }, 60_000);
  afterAll(async () => {
    await prometheus?.stop();
    await server?.stop();
  });

  const sources = (client: PrometheusClient) => ({query: (q: string) => client.query(q), podMetrics: async (p: ServingPod) => (await fetch(`${p.url}/metrics`)).text()});

  it("reads the service's pods through the default query", async () => {
    const client = new PrometheusClient(prometheus.url);
    const load = await eventually(async () => {
      const l = await readLoad(sources(client), "team", "chat", [pod], undefined);
      return l.ok && !l.fallbackFrom ? l : undefined;
    }, 30_000, "Prometheus to have scraped the server");
    expect(load).toMatchObject({ok: true, activeRequests: 0, complete: true, source: "Prometheus, 1/1 pods"});
  });

  it("says what is wrong with a bad query, and then reads the pods directly", async () => {
    const client = new PrometheusClient(prometheus.url);
    await expect(client.query("sum(")).rejects.toThrow(new PrometheusError("Prometheus rejected the query (bad_data): invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis", "query"));
    const load = await readLoad(sources(client), "team", "chat", [pod], "sum(");
    expect(load).toMatchObject({ok: true, activeRequests: 0, source: "pods' /metrics, 1/1 pods", fallbackFrom: {reason: "InvalidQuery"}});
  });

  it("reports an unreachable Prometheus, and a query with no samples, without throwing", async () => {
    const dead = new PrometheusClient(`http://127.0.0.1:${await freePort()}`);
    const error = (await dead.query("up").catch((e: unknown) => e)) as PrometheusError;
    expect(error).toBeInstanceOf(PrometheusError);
    expect(error.kind).toBe("unreachable");
    expect(error.message).toMatch(/^Prometheus at http:\/\/127\.0\.0\.1:\d+ is unreachable: .*ECONNREFUSED/);
    const nowhere = {query: dead.query.bind(dead), podMetrics: () => Promise.reject(new Error("no route"))};
    expect(await readLoad(nowhere, "team", "chat", [pod], undefined)).toMatchObject({ok: false, reason: "PrometheusUnavailable", message: expect.stringContaining("the pods' /metrics are not reachable either")});
    const empty = await readLoad({...sources(new PrometheusClient(prometheus.url)), podMetrics: () => Promise.reject(new Error("no route"))}, "team", "chat", [pod], 'llm_active_requests{namespace="elsewhere"}');
    expect(empty).toMatchObject({ok: false, reason: "NoMetrics", message: "spec.autoscaling.query returned no samples; the pods' /metrics are not reachable either"});
  });
});
