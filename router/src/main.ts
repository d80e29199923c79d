import {createServer, type Server} from "node:http";
import type {AddressInfo} from "node:net";
import {KubeConfig} from "@kubernetes/client-node";
import {EXIT_CONFIG, PATHS, ROUTER_ENV} from "../../contract/index.js";
import {createLogger, type Logger} from "../../contract/log.js";
import {loadRouterConfig, RouterConfigError, type RouterConfig} from "./config.js";
import {DemandSignal, leaseWriter} from "./demand.js";
import {endpointSliceSource, staticSource, type ReplicaSource} from "./endpoints.js";
import {RouterMetrics} from "./metrics.js";
import {ReplicaPool} from "./pool.js";
import {RouterProxy} from "./proxy.js";

export interface RunningRouter {
  readonly url: string;
  readonly server: Server;
  readonly pool: ReplicaPool;
  stop(): Promise<void>;
}

/**
 * Starts a router: its replica source, the pool, the proxy and the HTTP server. /healthz
 * and /readyz answer for the router itself (ready once the first replica list arrived,
 * even if it is empty: holding requests at zero replicas is its job); /metrics are its own;
 * everything else goes to a replica.
 */
export async function startRouter(config: RouterConfig, log: Logger, kc?: KubeConfig): Promise<RunningRouter> {
  const metrics = new RouterMetrics(config.service);
  const kube = config.replicas.kind === "endpointSlices" || config.demand ? (kc ?? defaultKubeConfig()) : undefined;
  const demand = config.demand && kube ? new DemandSignal(leaseWriter(kube, config.demand.namespace, config.demand.lease, config.demand.pod), (e) => log.warn("writing the demand lease failed", {error: String(e)})) : undefined;
  const pool = new ReplicaPool(config.strategy, config.loadFactor, {
    ...metrics.poolObserver,
    held: (held) => {
      metrics.poolObserver.held(held);
      demand?.set(held);
    }
  });
  const proxy = new RouterProxy(
    pool,
    {
      service: config.service,
      modelName: config.modelName,
      prefixAffinity: config.strategy === "PrefixHash",
      maxHeld: config.maxHeldRequests,
      holdTimeoutMs: config.holdTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      maxRequestBytes: config.maxRequestBytes
    },
    metrics,
    log
  );
  let synced = false;
  const onReplicas = (replicas: Parameters<ReplicaPool["update"]>[0]) => {
    synced = true;
    const before = pool.replicas.map((r) => r.name).join(",");
    pool.update(replicas);
    const after = replicas.map((r) => r.name).join(",");
    if (before !== after) log.info("replicas changed", {ready: replicas.length, replicas: replicas.map((r) => r.name)});
  };
  const source: ReplicaSource =
    config.replicas.kind === "static"
      ? staticSource(config.replicas.urls, onReplicas)
      : endpointSliceSource(kube!, config.replicas.namespace, config.replicas.service, onReplicas, (e) => log.warn("watching endpoint slices failed; retrying", {error: String(e)}));

  const server = createServer({keepAliveTimeout: 65_000, requestTimeout: 0}, (req, res) => {
    const path = req.url ?? "/";
    if (req.method === "GET" && path === PATHS.healthz) return void res.writeHead(200, {"content-type": "text/plain"}).end("ok");
    if (req.method === "GET" && path === PATHS.readyz) return void res.writeHead(synced ? 200 : 503, {"content-type": "text/plain"}).end(synced ? "ready" : "waiting for the replica list");
    if (req.method === "GET" && path === PATHS.metrics) {
      void metrics.registry.metrics().then((text) => res.writeHead(200, {"content-type": metrics.registry.contentType}).end(text));
      return;
    }
    proxy.handle(req, res).catch((e: unknown) => {
      log.error("request failed in the router", {error: String(e)});
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, resolve);
  });
  await source.start();
  const address = server.address() as AddressInfo;
  const host = address.address.includes(":") ? `[${address.address}]` : address.address;
  return {
    url: `http://${host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host}:${address.port}`,
    server,
    pool,
    async stop() {
      await source.stop();
      await demand?.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      proxy.close();
    }
  };
}

/** In a pod: its service account. Elsewhere (or with KUBECONFIG set): the kubeconfig. */
function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** How long a stopping router lets in-flight requests finish (its pods' grace period is 30 s). */
const DRAIN_MS = 25_000;

const USAGE = `paddock-router: the request pool in front of one LlmService's replicas.

Configured by environment (see docs/router.md):
  ${ROUTER_ENV.modelName} (required), ${ROUTER_ENV.namespace} + ${ROUTER_ENV.endpointsService} or ${ROUTER_ENV.staticEndpoints},
  ${ROUTER_ENV.strategy} (LeastLoad | PrefixHash), ${ROUTER_ENV.loadFactor}, ${ROUTER_ENV.maxHeldRequests},
  ${ROUTER_ENV.holdTimeoutSeconds}, ${ROUTER_ENV.requestTimeoutSeconds}, ${ROUTER_ENV.demandLease} + ${ROUTER_ENV.podName},
  ${ROUTER_ENV.host}, ${ROUTER_ENV.port}, ${ROUTER_ENV.logLevel}, ${ROUTER_ENV.maxRequestBytes}.
`;

async function main(): Promise<void> {
  if (process.argv.includes("--help")) {
    process.stdout.write(USAGE);
    return;
  }
  let config: RouterConfig;
  try {
    config = loadRouterConfig(process.env);
  } catch (e) {
    if (!(e instanceof RouterConfigError)) throw e;
    process.stderr.write(`paddock-router: ${e.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const log = createLogger(config.logLevel);
  const router = await startRouter(config, log);
  log.info("router listening", {url: router.url, service: config.service, strategy: config.strategy, replicas: config.replicas.kind});
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", {signal});
    // New connections stop now; in-flight streams get until the pod's grace period ends.
    const force = setTimeout(() => void router.stop().finally(() => process.exit(0)), DRAIN_MS);
    router.server.close(() => {
      clearTimeout(force);
      void router.stop().finally(() => process.exit(0));
    });
    router.server.closeIdleConnections();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    process.stderr.write(`paddock-router: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
