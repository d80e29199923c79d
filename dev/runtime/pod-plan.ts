import {isAbsolute, resolve} from "node:path";
import {ENV, IMAGE_ENTRY} from "../../contract/index.js";

/**
 * How the local runtime runs one container of a pod as a process: pure translation of the
 * pod spec, as a kubelet plus container runtime would interpret it. Development only.
 */

export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{name: string; value?: string; valueFrom?: EnvSource}>;
  volumeMounts?: Array<{name: string; mountPath: string; subPath?: string}>;
  ports?: Array<{name?: string; containerPort: number}>;
}

interface EnvSource {
  secretKeyRef?: {name: string; key: string; optional?: boolean};
  configMapKeyRef?: {name: string; key: string; optional?: boolean};
  fieldRef?: {fieldPath: string};
}

export interface PlanContext {
  readonly namespace: string;
  readonly podName: string;
  readonly podIP: string;
  /** The loopback address the process listens on. */
  readonly listenIP: string;
  /** Local directory for each volume name. */
  readonly volumes: ReadonlyMap<string, string>;
  readonly secret: (name: string, key: string) => string | undefined;
  readonly configMap: (name: string, key: string) => string | undefined;
  /** The checkout whose dist/ the image's /app would hold. */
  readonly appRoot: string;
  /**
   * The node's GPUs are fake (the local node advertises some; this machine has none): the
   * server then serves from the CPU as the stand-in it is, instead of exiting as a real
   * GPU pod without a GPU must (GPU_REQUIRED).
   */
  readonly fakeGpus?: boolean;
  /** A kubeconfig holding the pod's service account token, when the pod mounts one. */
  readonly kubeconfig?: string;
}

export interface ProcessPlan {
  readonly file: string;
  readonly args: string[];
  readonly env: Record<string, string>;
  readonly cwd: string;
}

/** Thrown with the reason and message a user reads in `kubectl describe pod`. */
export class PlanError extends Error {
  constructor(
    readonly reason: string,
    message: string
  ) {
    super(message);
  }
}

/** The inference image's ENTRYPOINT (Dockerfile.inference), run from the checkout. */
export const INFERENCE_ENTRYPOINT = ["node", IMAGE_ENTRY.server];
/** Images the runtime can run: Paddock's inference and operator (router) images, any registry or tag. */
export const RUNNABLE_IMAGE = /(^|\/)(inference|operator)(:|@|$)/;
/** The pod network (pod-network.ts), preloaded into every pod's node process. */
export const POD_NETWORK_HOOK = "dist/dev/runtime/pod-network.js";

/** `$(VAR)` references expand to variables defined earlier; `$$(VAR)` escapes, as in Kubernetes. */
export function expand(value: string, vars: Readonly<Record<string, string>>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => (m === "$$" ? "$" : name !== undefined && name in vars ? vars[name]! : m));
}

/** Maps a path inside the container to the local path of the volume mounted there. */
export function localPath(path: string, mounts: ReadonlyArray<{mountPath: string; local: string}>): string {
  const best = mounts.filter((m) => path === m.mountPath || path.startsWith(m.mountPath.replace(/\/?$/, "/"))).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  return best ? best.local + path.slice(best.mountPath.replace(/\/$/, "").length) : path;
}

export function planContainer(container: ContainerSpec, ctx: PlanContext): ProcessPlan {
  if (!RUNNABLE_IMAGE.test(container.image)) {
    throw new PlanError("ImageNotRunnableLocally", `the local runtime runs only Paddock's inference and operator images, not ${container.image}`);
  }
  const mounts = (container.volumeMounts ?? []).map((m) => {
    const dir = ctx.volumes.get(m.name);
    if (dir === undefined) throw new PlanError("CreateContainerConfigError", `volume ${m.name} is not available locally`);
    return {mountPath: m.mountPath, local: m.subPath ? resolve(dir, m.subPath) : dir};
  });
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    let value: string | undefined;
    if (e.value !== undefined) value = expand(e.value, env);
    else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      value = ctx.secret(ref.name, ref.key);
      if (value === undefined && !ref.optional) throw new PlanError("CreateContainerConfigError", `secret "${ref.name}" key "${ref.key}" not found`);
    } else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      value = ctx.configMap(ref.name, ref.key);
      if (value === undefined && !ref.optional) throw new PlanError("CreateContainerConfigError", `configmap "${ref.name}" key "${ref.key}" not found`);
    } else if (e.valueFrom?.fieldRef) {
      value = {"metadata.name": ctx.podName, "metadata.namespace": ctx.namespace, "status.podIP": ctx.podIP}[e.valueFrom.fieldRef.fieldPath];
    }
    if (value !== undefined) env[e.name] = value.startsWith("/") ? localPath(value, mounts) : value;
  }
  // Every pod keeps its container port: each listens on its own loopback address.
  env[ENV.host] = ctx.listenIP;
  if (ctx.fakeGpus && env[ENV.gpuRequired] !== undefined) env[ENV.gpuRequired] = "false";
  // What a kubelet gives a pod with a service account: API access as that account, nothing more.
  if (ctx.kubeconfig) env["KUBECONFIG"] = ctx.kubeconfig;
  env["NODE_OPTIONS"] = `--import=${resolve(ctx.appRoot, POD_NETWORK_HOOK)}`;
  const argv = [...(container.command ?? INFERENCE_ENTRYPOINT), ...(container.args ?? [])].map((a) => {
    const expanded = expand(a, env);
    return expanded.startsWith("/") ? localPath(expanded, mounts) : expanded;
  });
  const [file, ...args] = argv as [string, ...string[]];
  if (file !== "node") throw new PlanError("ImageNotRunnableLocally", `the local runtime runs node commands only, not ${file}`);
  // The image's WORKDIR is /app, holding what the checkout builds into dist/.
  return {file: process.execPath, args: args.map((a) => (a.startsWith("dist/") && !isAbsolute(a) ? resolve(ctx.appRoot, a) : a)), env, cwd: ctx.appRoot};
}
