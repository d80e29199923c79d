import {readFileSync} from "node:fs";
import {resolve} from "node:path";
import {parse, stringify} from "yaml";
import {REPO_ROOT} from "../../dev/paths.js";
import {eventually, type TestCluster} from "./cluster.js";

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

/**
 * The example LlmService's spec (examples/llmservice.yaml), with the per-pod download
 * (`cache.mode: None`): KWOK pods run nothing and huggingface.co is out of reach here, so the
 * shared cache's Job and claim are exercised by the end-to-end tests, against a local host.
 */
const exampleDoc = parse(readFileSync(resolve(REPO_ROOT, "examples/llmservice.yaml"), "utf8")) as {spec: Record<string, unknown> & {model: Record<string, unknown>}};
export const example = {spec: {...exampleDoc.spec, model: {...exampleDoc.spec.model, cache: {mode: "None"}}}} as {spec: Record<string, unknown>};

/**
 * kubectl-level helpers for operator tests on the shared test cluster: namespaces of their
 * own (deleted by `cleanup`), LlmService apply, and waits on conditions.
 */
export function llmServices(cluster: () => TestCluster, prefix: string) {
  let ns = 0;
  const created: string[] = [];
  const k = () => cluster();
  const get = <T>(kind: string, name: string, n: string) => JSON.parse(k().kubectl(["get", kind, name, "-n", n, "-o", "json"])) as T;
  const condition = (n: string, name: string, type: string) =>
    ((get<{status?: {conditions?: Condition[]}}>("llms", name, n).status?.conditions ?? []) as Condition[]).find((c) => c.type === type);
  return {
    namespace: () => {
      const name = `${prefix}-${Date.now().toString(36)}-${ns++}`;
      k().kubectl(["create", "namespace", name]);
      created.push(name);
      return name;
    },
    get,
    tryGet: <T>(kind: string, name: string, n: string) => {
      const r = k().kubectlResult(["get", kind, name, "-n", n, "-o", "json"]);
      return r.status === 0 ? (JSON.parse(r.stdout) as T) : undefined;
    },
    apply: (n: string, name: string, spec: Record<string, unknown>) =>
      k().kubectlResult(["apply", "-n", n, "-f", "-"], stringify({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name}, spec})),
    condition,
    waitReady: (n: string, name: string) => eventually(() => condition(n, name, "Ready")?.status === "True", 60_000, `${name} Ready`),
    /** Other test files share the cluster: give back its GPUs. */
    cleanup: () => {
      for (const n of created) k().kubectlResult(["delete", "namespace", n, "--wait=false"]);
    }
  };
}
