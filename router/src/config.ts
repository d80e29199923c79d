import {z} from "zod";
import {DEFAULT_PORT, ROUTER_ENV, ROUTING_STRATEGIES, type RoutingStrategy} from "../../contract/index.js";
import type {LogLevel} from "../../contract/log.js";

/** Thrown when the environment cannot configure a router; the message names the variable. */
export class RouterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RouterConfigError";
  }
}

const envSchema = z
  .object({
    [ROUTER_ENV.host]: z.string().min(1).default("0.0.0.0"),
    [ROUTER_ENV.port]: z.coerce.number().int().min(0).max(65_535).default(DEFAULT_PORT),
    [ROUTER_ENV.modelName]: z.string({error: "is required: the model id the replicas serve"}).min(1).max(256),
    [ROUTER_ENV.logLevel]: z.enum(["debug", "info", "warn", "error"]).default("info"),
    [ROUTER_ENV.maxRequestBytes]: z.coerce.number().int().min(1).max(64 * 1024 * 1024).default(1024 * 1024),
    [ROUTER_ENV.namespace]: z.string().min(1).optional(),
    [ROUTER_ENV.service]: z.string().min(1).default("llm"),
    [ROUTER_ENV.endpointsService]: z.string().min(1).optional(),
    [ROUTER_ENV.staticEndpoints]: z
      .string()
      .transform((s) => s.split(",").map((u) => u.trim()).filter(Boolean))
      .pipe(z.array(z.url({protocol: /^http$/, error: "must be http:// URLs, comma-separated"})).min(1))
      .optional(),
    [ROUTER_ENV.strategy]: z.enum(ROUTING_STRATEGIES).default("LeastLoad"),
    [ROUTER_ENV.loadFactor]: z.coerce.number().min(1).max(10).default(1.25),
    [ROUTER_ENV.maxHeldRequests]: z.coerce.number().int().min(0).max(100_000).default(64),
    [ROUTER_ENV.holdTimeoutSeconds]: z.coerce.number().min(0).max(86_400).default(600),
    [ROUTER_ENV.requestTimeoutSeconds]: z.coerce.number().positive().max(86_400).default(600),
    [ROUTER_ENV.demandLease]: z.string().min(1).optional(),
    [ROUTER_ENV.podName]: z.string().min(1).optional()
  })
  .superRefine((env, ctx) => {
    const fromCluster = env[ROUTER_ENV.namespace] !== undefined && env[ROUTER_ENV.endpointsService] !== undefined;
    if (!fromCluster && !env[ROUTER_ENV.staticEndpoints]) {
      ctx.addIssue({code: "custom", path: [ROUTER_ENV.endpointsService], message: `is required with ${ROUTER_ENV.namespace} (or set ${ROUTER_ENV.staticEndpoints})`});
    }
    if (env[ROUTER_ENV.demandLease] && !env[ROUTER_ENV.podName]) ctx.addIssue({code: "custom", path: [ROUTER_ENV.podName], message: `is required with ${ROUTER_ENV.demandLease}`});
  });

export interface RouterConfig {
  readonly host: string;
  readonly port: number;
  readonly modelName: string;
  readonly logLevel: LogLevel;
  readonly maxRequestBytes: number;
  readonly service: string;
  /** Where replicas come from: a Service's EndpointSlices, or a fixed list. */
  readonly replicas: {readonly kind: "endpointSlices"; readonly namespace: string; readonly service: string} | {readonly kind: "static"; readonly urls: readonly string[]};
  readonly strategy: RoutingStrategy;
  readonly loadFactor: number;
  readonly maxHeldRequests: number;
  readonly holdTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** The demand Lease to annotate, with this pod's name; absent outside a cluster. */
  readonly demand: {readonly namespace: string; readonly lease: string; readonly pod: string} | undefined;
}

/** Parses the router's environment; throws RouterConfigError naming the first bad variable. */
export function loadRouterConfig(env: Readonly<Record<string, string | undefined>>): RouterConfig {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== "")));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RouterConfigError(`${String(issue.path[0] ?? "environment")} ${issue.message}`);
  }
  const e = parsed.data;
  const namespace = e[ROUTER_ENV.namespace];
  const statics = e[ROUTER_ENV.staticEndpoints];
  const lease = e[ROUTER_ENV.demandLease];
  return {
    host: e[ROUTER_ENV.host],
    port: e[ROUTER_ENV.port],
    modelName: e[ROUTER_ENV.modelName],
    logLevel: e[ROUTER_ENV.logLevel],
    maxRequestBytes: e[ROUTER_ENV.maxRequestBytes],
    service: e[ROUTER_ENV.service],
    replicas: statics ? {kind: "static", urls: statics} : {kind: "endpointSlices", namespace: namespace!, service: e[ROUTER_ENV.endpointsService]!},
    strategy: e[ROUTER_ENV.strategy],
    loadFactor: e[ROUTER_ENV.loadFactor],
    maxHeldRequests: e[ROUTER_ENV.maxHeldRequests],
    holdTimeoutMs: e[ROUTER_ENV.holdTimeoutSeconds] * 1000,
    requestTimeoutMs: e[ROUTER_ENV.requestTimeoutSeconds] * 1000,
    demand: lease && namespace ? {namespace, lease, pod: e[ROUTER_ENV.podName]!} : undefined
  };
}
