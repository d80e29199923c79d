import {resolve} from "node:path";
import {ClusterError, clusterUp} from "../../dev/cluster/cluster.js";
import {FAKE_NODE_LABEL} from "../../dev/cluster/nodes.js";
import {eventually, TEST_CLUSTER_DIR, TEST_NODES, tokenKubeconfig, useCluster, type TestCluster} from "../helpers/cluster.js";
import {REPO_ROOT} from "../../dev/paths.js";

/**
 * The local control plane: real etcd, kube-apiserver, controller-manager and scheduler;
 * only kubelets are fake (KWOK), since no container runtime runs here.
 */
const FIXTURES = resolve(REPO_ROOT, "test/fixtures");

interface PodList {
  items: Array<{metadata: {name: string}; spec: {nodeName?: string}; status: {phase: string; podIP?: string; conditions?: Array<{type: string; status: string}>}}>;
}

describe("local Kubernetes cluster", () => {
  let k: TestCluster;
  beforeAll(async () => {
    k = await useCluster();
  }, 600_000);
  afterAll(() => {
    for (const ns of ["gpu-deploy", "gpu-too-many", "rbac-check"]) k.kubectlResult(["delete", "namespace", ns, "--wait=false"]);
    k.kubectlResult(["delete", "crd", "widgets.test.paddock.dev", "--wait=false"]);
  });

  const json = <T>(args: string[]) => JSON.parse(k.kubectl([...args, "-o", "json"])) as T;

  it("runs the pinned Kubernetes version on both sides", () => {
    const v = json<{clientVersion: {gitVersion: string}; serverVersion: {gitVersion: string}}>(["version"]);
    expect(v.clientVersion.gitVersion).toBe("v1.35.4");
    expect(v.serverVersion.gitVersion).toBe("v1.35.4");
  });

  it("has the fake GPU nodes with 8 GPUs each and the CPU node, all Ready", () => {
    const nodes = json<{items: Array<{metadata: {name: string; labels: Record<string, string>}; status: {capacity: Record<string, string>; conditions: Array<{type: string; status: string}>}}>}>(
      ["get", "nodes", "-l", `${FAKE_NODE_LABEL}=true`]
    );
    // A KUBECONFIG-given cluster (e.g. `npm run cluster:up`) may have its own node counts.
    if (!process.env["KUBECONFIG"]) expect(nodes.items).toHaveLength(TEST_NODES.gpuNodes + TEST_NODES.cpuNodes);
    for (const n of nodes.items) expect(n.status.conditions.find((c) => c.type === "Ready")?.status).toBe("True");
    const gpu = nodes.items.filter((n) => n.status.capacity["nvidia.com/gpu"] !== undefined);
    expect(gpu.length).toBeGreaterThan(0);
    expect(gpu.every((n) => n.status.capacity["nvidia.com/gpu"] === "8")).toBe(true);
    expect(gpu.every((n) => n.metadata.labels["nvidia.com/gpu.product"] === "NVIDIA-H100-80GB-HBM3")).toBe(true);
  });

  it("schedules GPU pods onto GPU nodes, runs them (KWOK) and garbage-collects them with their Deployment", async () => {
    k.kubectl(["create", "namespace", "gpu-deploy"]);
    k.kubectl(
      ["apply", "-n", "gpu-deploy", "-f", "-"],
      JSON.stringify({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: {name: "llm"},
        spec: {
          replicas: 3,
          selector: {matchLabels: {app: "llm"}},
          template: {
            metadata: {labels: {app: "llm"}},
            spec: {containers: [{name: "server", image: "paddock/inference:test", resources: {limits: {"nvidia.com/gpu": "1"}}}]}
          }
        }
      })
    );
    const pods = await eventually(() => {
      const list = json<PodList>(["get", "pods", "-n", "gpu-deploy", "-l", "app=llm"]);
      const ready = list.items.filter((p) => p.status.phase === "Running" && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
      return ready.length === 3 ? ready : undefined;
    }, 60_000, "3 Running and Ready pods");
    expect(pods.every((p) => p.spec.nodeName?.startsWith("paddock-gpu-"))).toBe(true);
    expect(pods.every((p) => p.status.podIP)).toBe(true);

    k.kubectl(["delete", "deployment", "llm", "-n", "gpu-deploy", "--wait=false"]);
    await eventually(() => {
      const left = json<PodList>(["get", "pods,replicasets", "-n", "gpu-deploy"]).items.length;
      return left === 0;
    }, 150_000, "ReplicaSet and Pods garbage-collected");
    // The garbage collector can hold deletions for a while after CRDs change (other tests
    // install and upgrade one): it re-reads API discovery every 30 s and resyncs its monitors.
  }, 240_000);

  it("leaves a pod that wants more GPUs than any node has Pending with Insufficient nvidia.com/gpu", async () => {
    k.kubectl(["create", "namespace", "gpu-too-many"]);
    k.kubectl(
      ["apply", "-n", "gpu-too-many", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: {name: "greedy"},
        spec: {containers: [{name: "c", image: "x", resources: {limits: {"nvidia.com/gpu": "9"}}}]}
      })
    );
    const event = await eventually(() => {
      const events = json<{items: Array<{reason: string; message: string}>}>(["get", "events", "-n", "gpu-too-many", "--field-selector", "involvedObject.name=greedy"]);
      return events.items.find((e) => e.reason === "FailedScheduling");
    }, 30_000, "a FailedScheduling event");
    expect(event.message).toContain("Insufficient nvidia.com/gpu");
    expect(json<{status: {phase: string}}>(["get", "pod", "greedy", "-n", "gpu-too-many"]).status.phase).toBe("Pending");
  });

  it("enforces a CRD's CEL validation rule with the rule's message", async () => {
    k.kubectl(["apply", "-f", resolve(FIXTURES, "widget-crd.yaml")]);
    await eventually(() => k.kubectlResult(["get", "widgets"]).status === 0, 30_000, "CRD established");
    const bad = k.kubectlResult(["apply", "-f", "-"], JSON.stringify({apiVersion: "test.paddock.dev/v1", kind: "Widget", metadata: {name: "bad"}, spec: {min: 5, max: 1}}));
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain("spec.min must be less than or equal to spec.max");
    const good = k.kubectlResult(["apply", "-f", "-"], JSON.stringify({apiVersion: "test.paddock.dev/v1", kind: "Widget", metadata: {name: "good"}, spec: {min: 1, max: 5}}));
    expect(good.status).toBe(0);
  });

  it("authorizes with RBAC and accepts service-account tokens", async () => {
    k.kubectl(["create", "namespace", "rbac-check"]);
    k.kubectl(["create", "serviceaccount", "reader", "-n", "rbac-check"]);
    // Only the token: the admin kubeconfig's client certificate would authenticate instead.
    const tokenConfig = tokenKubeconfig(k, "rbac-check", "reader");
    const asReader = (args: string[]) => k.kubectlResult([...args, `--kubeconfig=${tokenConfig}`]);
    const denied = asReader(["get", "pods", "-n", "rbac-check"]);
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toContain('"system:serviceaccount:rbac-check:reader" cannot list resource "pods"');
    k.kubectl(["create", "role", "pod-reader", "--verb=list", "--resource=pods", "-n", "rbac-check"]);
    k.kubectl(["create", "rolebinding", "reader", "--role=pod-reader", "--serviceaccount=rbac-check:reader", "-n", "rbac-check"]);
    await eventually(() => asReader(["get", "pods", "-n", "rbac-check"]).status === 0, 10_000, "access after the RoleBinding");
  });

  it("has a working helm", () => {
    const version = k.helm(["version", "--short"]);
    expect(version.stdout).toMatch(/^v3\.22\.0/);
    const rendered = k.helm(["template", "demo", resolve(FIXTURES, "hello-chart"), "--set", "greeting=hi"]);
    expect(rendered.status).toBe(0);
    expect(rendered.stdout).toContain("name: demo-greeting");
    expect(rendered.stdout).toContain('greeting: "hi"');
  });

  // Only meaningful when this run owns the cluster (always in CI); a KUBECONFIG-given one lives elsewhere.
  (process.env["KUBECONFIG"] ? it.skip : it)("refuses a second cluster in the same folder while one runs", async () => {
    await expect(clusterUp({dir: TEST_CLUSTER_DIR, binDir: k.binDir, nodes: TEST_NODES})).rejects.toThrow(ClusterError);
    await expect(clusterUp({dir: TEST_CLUSTER_DIR, binDir: k.binDir, nodes: TEST_NODES})).rejects.toThrow(/already running/);
  });
});
