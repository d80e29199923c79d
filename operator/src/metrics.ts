import {Counter, Gauge, Histogram, Registry, collectDefaultMetrics} from "prom-client";
import type {AutoscalerObserver} from "./autoscaler/autoscaler.js";
import type {ControllerObserver} from "./controller/controller.js";

/** The operator's own metrics (`/metrics` on the health port). */
export class OperatorMetrics implements ControllerObserver, AutoscalerObserver {
  readonly reconciles: Counter<"result">;
  readonly reconcileDuration: Histogram;
  readonly queueDepth: Gauge;
  readonly apiRequests: Counter<"verb" | "code">;
  readonly leader: Gauge;
  readonly serviceReady: Gauge<"namespace" | "name">;
  readonly evaluations: Counter<"result">;
  readonly scalings: Counter<"direction">;
  readonly activeRequests: Gauge<"namespace" | "name">;
  readonly desiredReplicas: Gauge<"namespace" | "name">;
  readonly autoscalerHealthy: Gauge<"namespace" | "name">;

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
    this.evaluations = new Counter({
      name: "paddock_autoscaler_evaluations_total",
      help: "Autoscaler evaluations by result: ok (Prometheus), fallback (pods' /metrics), no_data (replicas held).",
      labelNames: ["result"],
      registers
    });
    this.scalings = new Counter({name: "paddock_autoscaler_scale_total", help: "Replica changes made by the autoscaler, by direction (up, down).", labelNames: ["direction"], registers});
    const perService = {labelNames: ["namespace", "name"] as const, registers};
    this.activeRequests = new Gauge({name: "paddock_autoscaler_active_requests", help: "Load the autoscaler last read for the service (in-flight requests over its pods).", ...perService});
    this.desiredReplicas = new Gauge({name: "paddock_autoscaler_desired_replicas", help: "Replicas the autoscaler last decided on.", ...perService});
    this.autoscalerHealthy = new Gauge({name: "paddock_autoscaler_metrics_available", help: "1 when the autoscaler's last evaluation could read the load, 0 when it held replicas for lack of data.", ...perService});
  }

  onEvaluation(namespace: string, name: string, result: "ok" | "fallback" | "no_data", load: number | undefined, replicas: number): void {
    this.evaluations.inc({result});
    if (load === undefined) this.activeRequests.remove({namespace, name});
    else this.activeRequests.set({namespace, name}, load);
    this.desiredReplicas.set({namespace, name}, replicas);
    this.autoscalerHealthy.set({namespace, name}, result === "no_data" ? 0 : 1);
  }

  onScale(direction: "up" | "down"): void {
    this.scalings.inc({direction});
  }

  onForget(namespace: string, name: string): void {
    for (const g of [this.activeRequests, this.desiredReplicas, this.autoscalerHealthy]) g.remove({namespace, name});
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
