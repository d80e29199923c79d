import {hostname} from "node:os";
import {z} from "zod";

/** Thrown for a bad flag or variable; the message names it. */
export class OperatorConfigError extends Error {
  override name = "OperatorConfigError";
}

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const csv = z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean));

/**
 * Operator settings. Each can be given as a flag (`--watch-namespaces=a,b`) or as an
 * environment variable (`PADDOCK_WATCH_NAMESPACES=a,b`); flags win.
 */
const schema = z.object({
  "watch-namespaces": csv.default([]).describe("Namespaces to watch; empty = all."),
  "default-image": z.string().min(1).default("ghcr.io/paddock-llm/inference:0.1.0").describe("Inference image when spec.image is unset (the CUDA image)."),
  "cpu-image": z.string().min(1).default("ghcr.io/paddock-llm/inference:0.1.0-cpu").describe("Inference image when spec.image is unset and spec.resources.gpus is 0 (no CUDA libraries)."),
  "router-image": z.string().min(1).default("ghcr.io/paddock-llm/operator:0.1.0").describe("Image of the routers (the operator's own: it carries the router's entry point)."),
  "hf-endpoint": z.string().regex(/^https?:\/\//, "must be an http(s):// URL").default("https://huggingface.co").describe("Hugging Face hub (or mirror) for hf:// models, as HF_ENDPOINT is for the hub's clients."),
  "image-pull-policy": z.enum(["Always", "IfNotPresent", "Never"]).optional(),
  "redis-image": z.string().min(1).default("redis:7.4-alpine"),
  "redis-max-memory": z.string().regex(/^\d+(mb|gb)$/i).default("256mb"),
  "prometheus-url": z.string().regex(/^https?:\/\//, "must be an http(s):// URL").default("http://prometheus-operated.monitoring.svc:9090"),
  "leader-elect": bool.default(true),
  "leader-election-namespace": z.string().min(1).optional().describe("Defaults to POD_NAMESPACE, else 'default'."),
  "leader-election-lease": z.string().min(1).default("paddock-operator-leader"),
  "lease-duration-seconds": z.coerce.number().int().min(2).max(600).default(15),
  "health-port": z.coerce.number().int().min(0).max(65_535).default(8081),
  "bind-address": z.string().default("0.0.0.0"),
  concurrency: z.coerce.number().int().min(1).max(64).default(4),
  "resync-seconds": z.coerce.number().int().min(10).max(86_400).default(300),
  "log-level": z.enum(["debug", "info", "warn", "error"]).default("info")
});

export type OperatorConfig = z.output<typeof schema> & {identity: string; leaderElectionNamespace: string};

export function loadOperatorConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<OperatorConfig> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const fromEnv = env[`PADDOCK_${key.toUpperCase().replaceAll("-", "_")}`];
    if (fromEnv !== undefined && fromEnv !== "") input[key] = fromEnv;
  }
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m || !(m[1]! in schema.shape)) throw new OperatorConfigError(`unknown argument '${arg}' (known: ${Object.keys(schema.shape).map((k) => `--${k}`).join(", ")})`);
    input[m[1]!] = m[2] ?? "true";
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new OperatorConfigError(parsed.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("; "));
  }
  return Object.freeze({
    ...parsed.data,
    identity: env["POD_NAME"] ?? `${hostname()}-${process.pid}`,
    leaderElectionNamespace: parsed.data["leader-election-namespace"] ?? env["POD_NAMESPACE"] ?? "default"
  });
}

/** `--help`: every flag with its environment variable and default. */
export function operatorUsage(): string {
  const defaults = schema.parse({}) as Record<string, unknown>;
  const lines = Object.entries(schema.shape).map(([key, field]) => {
    const d = defaults[key];
    const shown = d === undefined ? "" : ` (default: ${Array.isArray(d) ? d.join(",") || "all" : String(d)})`;
    return `  --${key}  PADDOCK_${key.toUpperCase().replaceAll("-", "_")}${shown}${field.description ? `\n      ${field.description}` : ""}`;
  });
  return `usage: paddock-operator [--flag=value ...]\n\nEach flag can also be set by its environment variable; flags win.\n\n${lines.join("\n")}\n`;
}
