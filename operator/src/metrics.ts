import {Counter, Gauge, Histogram, Registry, collectDefaultMetrics} from "prom-client";
import type {ControllerObserver} from "./controller/controller.js";

/** The operator's own metrics (`/metrics` on the health port). */
export class OperatorMetrics implements ControllerObserver {
  readonly reconciles: Counter<"result">;
  readonly reconcileDuration: Histogram;
  readonly queueDepth: Gauge;
  readonly apiRequests: Counter<"verb" | "code">;
  readonly leader: Gauge;
  readonly serviceReady: Gauge<"namespace" | "name">;

  constructor(
    readonly registry: Registry,
    private readonly log: (message: string, error: unknown) => void
  ) {
    collectDefaultMetrics({register: registry});
    const registers = [registry];
    this.reconciles = new Counter({name: "paddock_reconcile_total", help: "LlmService reconciles by result (success, error).", labelNames: ["result"], registers});
    this.reconcileDuration = new Histogram({
      name: "paddock_reconcile_duration_seconds",
      help: "Time to reconcile one LlmService, in seconds.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers
    });
    this.queueDepth = new Gauge({name: "paddock_workqueue_depth", help: "LlmServices waiting to be reconciled.", registers});
    this.apiRequests = new Counter({name: "paddock_kube_api_requests_total", help: "Requests to the Kubernetes API by verb and status code.", labelNames: ["verb", "code"], registers});
    this.leader = new Gauge({name: "paddock_leader", help: "1 while this instance holds the leader lease.", registers});
    this.serviceReady = new Gauge({
      name: "paddock_llmservice_ready",
      help: "1 when the LlmService's Ready condition is True, else 0 (one series per service, as kube-state-metrics does).",
      labelNames: ["namespace", "name"],
      registers
    });
  }

  onReconcile(result: "success" | "error", seconds: number): void {
    this.reconciles.inc({result});
    this.reconcileDuration.observe(seconds);
  }

  onQueueDepth(depth: number): void {
    this.queueDepth.set(depth);
  }

  onError(message: string, error: unknown): void {
    this.log(message, error);
  }
}
