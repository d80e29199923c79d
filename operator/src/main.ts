import {createServer} from "node:http";
import {KubeConfig} from "@kubernetes/client-node";
import {Registry} from "prom-client";
import {EXIT_CONFIG} from "../../contract/index.js";
import {createLogger} from "../../contract/log.js";
import {Autoscaler} from "./autoscaler/autoscaler.js";
import {heldRequests} from "./autoscaler/demand.js";
import {PrometheusClient} from "./autoscaler/prometheus.js";
import {demandLeaseOf} from "./desired/router.js";
import {loadOperatorConfig, OperatorConfigError, operatorUsage} from "./config.js";
import {Controller} from "./controller/controller.js";
import {KubeEventRecorder} from "./controller/events.js";
import {LeaderElector} from "./controller/leader-election.js";
import type {AppliedMemo} from "./controller/plan.js";
import {reconcile, type ReconcileResult} from "./controller/reconciler.js";
import {ModelSizer} from "./controller/model-size.js";
import {KubeClient} from "./kube/kube-client.js";
import {OperatorMetrics} from "./metrics.js";

/**
 * The Paddock operator: in a pod it uses its service account, elsewhere KUBECONFIG.
 * Only the leader reconciles; every instance serves /healthz, /readyz and /metrics.
 */
async function main(): Promise<void> {
  if (process.argv.includes("--help")) {
    process.stdout.write(operatorUsage());
    process.exit(0);
  }
  let config;
  try {
    config = loadOperatorConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof OperatorConfigError) {
      process.stderr.write(`paddock-operator: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
  const logger = createLogger(config["log-level"]);
  const kc = new KubeConfig();
  if (process.env["KUBERNETES_SERVICE_HOST"] && !process.env["KUBECONFIG"]) kc.loadFromCluster();
  else kc.loadFromDefault();

  const metrics = new OperatorMetrics(new Registry(), (message, error) => logger.warn(message, {error: error instanceof Error ? error.message : String(error)}));
  const onRequest = (verb: string, code: number) => metrics.apiRequests.inc({verb, code: String(code)});
  const userAgent = `paddock-operator/${config.identity}`;
  // Only the leader may write, and only while its lease is surely its own: every write of
  // the controller and the autoscaler goes through this client, which asks the elector.
  const elector = config["leader-elect"]
    ? new LeaderElector(new KubeClient(kc, {onRequest, userAgent: `${userAgent} (leader-election)`}), {
        namespace: config.leaderElectionNamespace,
        name: config["leader-election-lease"],
        identity: config.identity,
        leaseDurationSeconds: config["lease-duration-seconds"],
        onAttemptFailed: (error, leading) => logger.warn(leading ? "renewing the leader lease failed" : "acquiring the leader lease failed", {error: error instanceof Error ? error.message : String(error)}),
        onFollowing: (holder) => logger.info("following: another instance holds the leader lease", {holder})
      })
    : undefined;
  const kube = new KubeClient(kc, {onRequest, userAgent, ...(elector ? {mayWrite: () => elector.mayAct()} : {})});
  const events = new KubeEventRecorder(kube, config.identity, (e) => logger.debug("event not recorded", {error: String(e)}));
  const applied: AppliedMemo = new Map();
  const sizer = new ModelSizer(config["hf-endpoint"]);
  const controller: Controller = new Controller({
    kc,
    kube,
    namespaces: config["watch-namespaces"],
    concurrency: config.concurrency,
    resyncMs: config["resync-seconds"] * 1000,
    observer: metrics,
    reconcile: (namespace, name): Promise<ReconcileResult> =>
      reconcile(
        {
          kube,
          events,
          deployment: {image: config["default-image"], cpuImage: config["cpu-image"], hfEndpoint: config["hf-endpoint"], ...(config["image-pull-policy"] ? {imagePullPolicy: config["image-pull-policy"]} : {})},
          redis: {image: config["redis-image"], maxMemory: config["redis-max-memory"]},
          router: {image: config["router-image"], ...(config["image-pull-policy"] ? {imagePullPolicy: config["image-pull-policy"]} : {})},
          cache: controller.cache,
          applied,
          sizer,
          onReadiness: (ns, n, ready) => {
            if (ready === undefined) metrics.serviceReady.remove({namespace: ns, name: n});
            else metrics.serviceReady.set({namespace: ns, name: n}, ready ? 1 : 0);
          }
        },
        namespace,
        name
      )
  });

  const prometheusClients = new Map<string, PrometheusClient>();
  const autoscaler = new Autoscaler({
    kube,
    events,
    services: () => controller.services(),
    podsOf: (ns, n) => controller.cache.pods(ns, n),
    deployment: (ns, n) => controller.cache.deployment(ns, n),
    held: (ns, n, nowMs) => heldRequests(controller.leaseAnnotations(ns, demandLeaseOf(n)), nowMs),
    defaultPrometheusUrl: config["prometheus-url"],
    prometheus: (url) => {
      let client = prometheusClients.get(url);
      if (!client) prometheusClients.set(url, (client = new PrometheusClient(url)));
      return client;
    },
    observer: metrics
  });

  let started = false;
  let stopping = false;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") return void res.end("ok");
    // A follower is ready too: it is healthy and waiting for the lease.
    if (path === "/readyz") return void (stopping ? res.writeHead(503).end("stopping") : res.end("ok"));
    if (path === "/metrics") {
      void metrics.registry.metrics().then((text) => res.writeHead(200, {"Content-Type": metrics.registry.contentType}).end(text));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(config["health-port"], config["bind-address"], resolve));
  const address = server.address();
  logger.info("operator started", {
    identity: config.identity,
    namespaces: config["watch-namespaces"].length ? config["watch-namespaces"] : "all",
    health_port: typeof address === "object" && address ? address.port : config["health-port"],
    leader_election: config["leader-elect"]
  });

  const lead = async () => {
    metrics.leader.set(1);
    logger.info("leading: starting controllers", {identity: config.identity});
    started = true;
    await controller.start();
    autoscaler.start();
  };
  if (elector) {
    elector.run(
      () => void lead().catch((e: unknown) => fatal(e)),
      (why) => {
        // Another instance may already act: stop at once rather than risk two writers.
        logger.error("lost the leader lease; exiting", {why});
        process.exit(1);
      }
    );
  } else {
    await lead();
  }

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", {signal});
    // In-flight reconciles get a moment to finish; the next leader redoes anything cut short.
    setTimeout(() => {
      logger.warn("shutdown deadline passed; exiting");
      process.exit(0);
    }, 10_000).unref();
    autoscaler.stop();
    if (started) await controller.stop();
    await elector?.release();
    metrics.leader.set(0);
    kube.close();
    server.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  function fatal(error: unknown): never {
    logger.error("fatal", {error: error instanceof Error ? (error.stack ?? error.message) : String(error)});
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`paddock-operator: fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
