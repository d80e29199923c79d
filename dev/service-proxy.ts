import {createServer, request, Agent, type IncomingMessage, type Server, type ServerResponse} from "node:http";
import type {AddressInfo} from "node:net";
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
  next: number;
}

/**
 * Makes each LlmService's Service reachable from the host: one local port per Service,
 * spreading requests (not connections: clients keep connections alive) over the ready
 * endpoints that the real controller-manager lists in the Service's EndpointSlices.
 * A request that cannot connect goes to the next endpoint. Development only: in a cluster,
 * kube-proxy does this for the ClusterIP.
 */
export class ServiceProxy {
  readonly #proxies = new Map<string, Proxy>();
  readonly #agent = new Agent({keepAlive: true});
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

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#proxies.values()].map((p) => new Promise((r) => p.server.close(r))));
    this.#agent.destroy();
  }

  /** namespace/name -> local URL. */
  urls(): Map<string, string> {
    return new Map([...this.#proxies].map(([k, p]) => [k, p.url]));
  }

  async #sync(): Promise<void> {
    if (this.#syncing) return;
    this.#syncing = true;
    try {
      const services = await this.kube.list<{metadata: {name: string; namespace: string}}>("/api/v1/services", SERVICE_LABEL);
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
        p.server.close();
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
    const proxy: Proxy = {server: createServer(), url: "", endpoints, next: 0};
    proxy.server.on("request", (req: IncomingMessage, res: ServerResponse) => void this.#forward(proxy, req, res));
    await new Promise<void>((r) => proxy.server.listen(0, "127.0.0.1", r));
    proxy.url = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  async #forward(proxy: Proxy, req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Request bodies are small JSON: buffering them lets a failed connect retry elsewhere.
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const tries = Math.max(1, proxy.endpoints.addresses.length);
    for (let attempt = 0; attempt < tries; attempt++) {
      const addresses = proxy.endpoints.addresses;
      if (addresses.length === 0) break;
      const host = loopbackFor(addresses[proxy.next++ % addresses.length]!);
      const sent = await new Promise<boolean>((resolve) => {
        const upstream = request({host, port: proxy.endpoints.port, method: req.method, path: req.url, headers: req.headers, agent: this.#agent}, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          resolve(true);
        });
        upstream.on("error", (e: NodeJS.ErrnoException) => {
          if (res.headersSent) res.destroy(e);
          resolve(res.headersSent);
        });
        res.on("close", () => upstream.destroy());
        upstream.end(body);
      });
      if (sent) return;
    }
    res.writeHead(503, {"Content-Type": "application/json"}).end(JSON.stringify({error: {message: "no ready endpoint for this service", type: "server_error", param: null, code: "no_endpoints"}}));
  }
}
