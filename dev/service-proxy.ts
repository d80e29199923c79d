import {createServer, connect, type Server, type Socket, type AddressInfo} from "node:net";
import {SERVICE_LABEL} from "../operator/src/desired/meta.js";
import type {KubeClient} from "../operator/src/kube/kube-client.js";
import {loopbackFor} from "./runtime/pod-runner.js";

interface Endpoints {
  addresses: string[];
  port: number;
}

interface Proxy {
  server: Server;
  url: string;
  endpoints: Endpoints;
  /** Open client connections: a net.Server's close waits for every one of them to end. */
  clients: Set<Socket>;
}

/**
 * Makes each LlmService's Service reachable from the host: one local port per Service
 * (headless ones have no virtual IP, so none), balancing TCP **connections** at random over
 * the ready endpoints that the real controller-manager lists in the Service's
 * EndpointSlices, as kube-proxy does: a client that keeps its connection alive stays on
 * one pod. A refused connect tries another endpoint. Development only: in a cluster,
 * kube-proxy does this for the ClusterIP.
 */
export class ServiceProxy {
  readonly #proxies = new Map<string, Proxy>();
  #timer: NodeJS.Timeout | undefined;
  #syncing = false;

  constructor(
    private readonly kube: KubeClient,
    private readonly onChange: (services: ReadonlyMap<string, string>) => void,
    private readonly log: (message: string, fields?: Record<string, unknown>) => void
  ) {}

  async start(): Promise<void> {
    await this.#sync();
    this.#timer = setInterval(() => void this.#sync(), 500);
  }

  /**
   * Closes every port at once. Open connections are cut: a client's idle keep-alive
   * connection would otherwise hold `npm run dev`'s Ctrl-C for about a minute.
   */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#proxies.values()].map((p) => closeProxy(p)));
  }

  /** namespace/name -> local URL. */
  urls(): Map<string, string> {
    return new Map([...this.#proxies].map(([k, p]) => [k, p.url]));
  }

  async #sync(): Promise<void> {
    if (this.#syncing) return;
    this.#syncing = true;
    try {
      const all = await this.kube.list<{metadata: {name: string; namespace: string}; spec?: {clusterIP?: string}}>("/api/v1/services", SERVICE_LABEL);
      const services = {items: all.items.filter((s) => s.spec?.clusterIP !== "None")};
      const slices = await this.kube.list<{metadata: {namespace: string; labels?: Record<string, string>}; ports?: Array<{port?: number}>; endpoints?: Array<{addresses: string[]; conditions?: {ready?: boolean}}>}>("/apis/discovery.k8s.io/v1/endpointslices");
      const wanted = new Set<string>();
      let changed = false;
      for (const svc of services.items) {
        const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
        wanted.add(key);
        const mine = slices.items.filter((s) => s.metadata.namespace === svc.metadata.namespace && s.metadata.labels?.["kubernetes.io/service-name"] === svc.metadata.name);
        const endpoints: Endpoints = {
          addresses: mine.flatMap((s) => (s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses)),
          port: mine.find((s) => s.ports?.[0]?.port)?.ports?.[0]?.port ?? 8000
        };
        const existing = this.#proxies.get(key);
        if (existing) existing.endpoints = endpoints;
        else {
          this.#proxies.set(key, await this.#listen(endpoints));
          changed = true;
        }
      }
      for (const [key, p] of this.#proxies) {
        if (wanted.has(key)) continue;
        void closeProxy(p);
        this.#proxies.delete(key);
        changed = true;
      }
      if (changed) this.onChange(this.urls());
    } catch (e) {
      this.log("service sync failed", {error: String(e)});
    } finally {
      this.#syncing = false;
    }
  }

  async #listen(endpoints: Endpoints): Promise<Proxy> {
    const proxy: Proxy = {server: createServer(), url: "", endpoints, clients: new Set()};
    proxy.server.on("connection", (client: Socket) => {
      proxy.clients.add(client);
      client.once("close", () => proxy.clients.delete(client));
      this.#forward(proxy, client);
    });
    await new Promise<void>((r) => proxy.server.listen(0, "127.0.0.1", r));
    proxy.url = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  /** One client connection to one endpoint for its whole life; a refused connect tries the others. */
  #forward(proxy: Proxy, client: Socket, tried: ReadonlySet<string> = new Set()): void {
    client.pause();
    const candidates = proxy.endpoints.addresses.filter((a) => !tried.has(a));
    if (candidates.length === 0) {
      client.destroy();
      return;
    }
    const address = candidates[Math.floor(Math.random() * candidates.length)]!;
    const upstream = connect({host: loopbackFor(address), port: proxy.endpoints.port});
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.on("error", () => {
      if (!connected && !client.destroyed) return this.#forward(proxy, client, new Set([...tried, address]));
      client.destroy();
    });
    client.on("error", () => upstream.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => {
      if (connected) client.destroy();
    });
  }
}

/** Closes a proxy's port and cuts its open connections, which its close would wait for. */
function closeProxy(p: Proxy): Promise<void> {
  const closed = new Promise<void>((r) => p.server.close(() => r()));
  for (const client of p.clients) client.destroy();
  return closed;
}
