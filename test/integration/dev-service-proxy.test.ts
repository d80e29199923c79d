import {Agent, createServer, get} from "node:http";
import type {AddressInfo, Socket} from "node:net";
import {ServiceProxy} from "../../dev/service-proxy.js";
import {SERVICE_LABEL} from "../../operator/src/desired/meta.js";
import {eventually, useNamespaceClient} from "../helpers/cluster.js";

/**
 * `npm run dev`'s stand-in for kube-proxy, against the real API server: a Service and its
 * EndpointSlice, whose endpoint (10.42.0.77, the local node's pod address space) is a plain
 * HTTP server on 127.42.0.77 that keeps idle connections 65 s, as the router does. Ctrl-C
 * stops the proxy; a net.Server's close waits for every open connection, so one idle
 * keep-alive connection held `npm run dev`'s Ctrl-C for 64 s.
 */
describe("npm run dev's service proxy", () => {
  const ns = "dev-service-proxy";
  const c = useNamespaceClient(ns);

  it("serves a Service on a local port, and stops at once while a client keeps its connection open", async () => {
    const backend = createServer({keepAliveTimeout: 65_000}, (_req, res) => res.end("hello from the pod"));
    await new Promise<void>((r) => backend.listen(0, "127.42.0.77", r));
    const port = (backend.address() as AddressInfo).port;
    const agent = new Agent({keepAlive: true});
    const proxy = new ServiceProxy(c.kube, () => {}, () => {});
    try {
      const apply = (obj: object) => c.k.kubectl(["apply", "-f", "-"], JSON.stringify(obj));
      apply({apiVersion: "v1", kind: "Service", metadata: {name: "chat", namespace: ns, labels: {[SERVICE_LABEL]: "chat"}}, spec: {ports: [{port: 80, targetPort: port}]}});
      apply({
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {name: "chat-1", namespace: ns, labels: {"kubernetes.io/service-name": "chat", "endpointslice.kubernetes.io/managed-by": "test"}},
        addressType: "IPv4",
        ports: [{port}],
        endpoints: [{addresses: ["10.42.0.77"], conditions: {ready: true}}]
      });
      await proxy.start();
      const url = await eventually(() => proxy.urls().get(`${ns}/chat`), 10_000, "a local URL for the Service");
      let socket: Socket | undefined;
      const body = await new Promise<string>((resolve, reject) => {
        get(url, {agent}, (res) => {
          socket = res.socket;
          let text = "";
          res.on("data", (b: Buffer) => (text += b.toString()));
          res.on("end", () => resolve(text));
        }).on("error", reject);
      });
      expect(body).toBe("hello from the pod");
      // The client keeps the connection, idle, for its next request.
      expect(socket?.destroyed).toBe(false);
      const closed = new Promise((r) => socket!.once("close", r));
      await proxy.stop();
      await closed;
    } finally {
      await proxy.stop();
      agent.destroy();
      backend.closeAllConnections();
      await new Promise((r) => backend.close(r));
    }
  }, 20_000);
});
