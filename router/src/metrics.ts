import {Counter, Gauge, Histogram, Registry} from "prom-client";
import {ROUTER_METRIC} from "../../contract/index.js";
import type {Replica} from "./balancer.js";
import type {ProxyObserver} from "./proxy.js";
import type {FailureReason} from "./retry.js";

/** The router's /metrics: what it answered, how its replicas answered, and what it held. */
export class RouterMetrics implements ProxyObserver {
  readonly registry = new Registry();
  readonly #requests = new Counter({name: ROUTER_METRIC.requests, help: "Requests answered by the router, by HTTP status code.", labelNames: ["code"], registers: [this.registry]});
  readonly #ttfb = new Histogram({
    name: ROUTER_METRIC.upstreamTimeToFirstByte,
    help: "Seconds from sending a request to a replica to the first byte of its answer's body.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry]
  });
  readonly #inFlight = new Gauge({name: ROUTER_METRIC.inFlight, help: "Requests this router has in flight, per replica (pod).", labelNames: ["replica"], registers: [this.registry]});
  readonly #held = new Gauge({name: ROUTER_METRIC.held, help: "Requests waiting for a ready replica.", registers: [this.registry]});
  readonly #retries = new Counter({name: ROUTER_METRIC.retries, help: "Requests sent to another replica, by why the previous one failed.", labelNames: ["reason"], registers: [this.registry]});
  readonly #affinity = new Counter({
    name: ROUTER_METRIC.affinity,
    help: "PrefixHash placements: hit when the key's own replica took the request, spill when its load bound sent it on.",
    labelNames: ["result"],
    registers: [this.registry]
  });
  readonly #replicas = new Gauge({name: ROUTER_METRIC.replicas, help: "Ready replicas this router sends requests to.", registers: [this.registry]});
  readonly #ejections = new Counter({name: ROUTER_METRIC.ejections, help: "Replicas set aside for 2 s because they refused or reset a connection (a client leaving is not counted).", registers: [this.registry]});

  constructor(service: string) {
    this.registry.setDefaultLabels({llmservice: service});
    for (const reason of ["connect_error", "reset", "draining", "queue_full"] satisfies FailureReason[]) this.#retries.inc({reason}, 0);
    for (const result of ["hit", "spill"]) this.#affinity.inc({result}, 0);
    this.#held.set(0);
    this.#ejections.inc(0);
  }

  response(code: number): void {
    this.#requests.inc({code: String(code)});
  }
  timeToFirstByte(seconds: number): void {
    this.#ttfb.observe(seconds);
  }
  retry(reason: FailureReason): void {
    this.#retries.inc({reason});
  }
  affinity(hit: boolean): void {
    this.#affinity.inc({result: hit ? "hit" : "spill"});
  }

  /** The pool's observer: ready replicas, in flight per replica (undefined: gone), held requests. */
  readonly poolObserver = {
    replicas: (replicas: readonly Replica[]) => this.#replicas.set(replicas.length),
    load: (replica: string, inFlight: number | undefined) => (inFlight === undefined ? this.#inFlight.remove({replica}) : this.#inFlight.set({replica}, inFlight)),
    held: (held: number) => this.#held.set(held),
    ejected: () => this.#ejections.inc()
  };
}
