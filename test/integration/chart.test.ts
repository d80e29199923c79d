import {cpSync, mkdtempSync, readFileSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join, resolve} from "node:path";
import {Histogram, Registry} from "prom-client";
import {parse, parseAllDocuments, stringify} from "yaml";
import {KubeConfig} from "@kubernetes/client-node";
import {KubeClient} from "../../operator/src/kube/kube-client.js";
import {LocalVolumeProvisioner, VOLUME_RESOURCES} from "../../dev/runtime/local-volumes.js";
import {ServerMetrics} from "../../inference-image/src/metrics.js";
import {OperatorMetrics} from "../../operator/src/metrics.js";
import {RouterMetrics} from "../../router/src/metrics.js";
import {eventually, tokenKubeconfig, useCluster, type TestCluster} from "../helpers/cluster.js";
import {OperatorProcess} from "../../dev/processes/operator.js";
import {freePort} from "../../dev/processes/ports.js";
import {PrometheusProcess} from "../../dev/processes/prometheus.js";
import {REPO_ROOT} from "../../dev/paths.js";

const CHART = resolve(REPO_ROOT, "charts/paddock");
type K8sObject = {apiVersion: string; kind: string; metadata: {name: string; namespace?: string; annotations?: Record<string, string>}; spec?: Record<string, unknown>; rules?: unknown[]};

describe("helm chart", () => {
  let k: TestCluster;
  beforeAll(async () => {
    k = await useCluster();
    k.kubectl(["apply", "-f", resolve(REPO_ROOT, "crds/llmservices.yaml")]);
    await eventually(() => k.kubectlResult(["get", "llms", "-A"]).status === 0, 30_000, "CRD established");
  }, 600_000);

  const template = (args: string[] = []): K8sObject[] => {
    const r = k.helm(["template", "paddock", CHART, "--namespace", "paddock-system", ...args]);
    if (r.status !== 0) throw new Error(r.stderr);
    return parseAllDocuments(r.stdout).map((d) => d.toJSON() as K8sObject).filter(Boolean);
  };
  const kinds = (objs: K8sObject[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();

  afterAll(() => {
    for (const ns of ["chart-app", "scoped-system", "team-a", "team-b", "paddock-system", "alerts-app"]) k.kubectlResult(["delete", "namespace", ns, "--wait=false"]);
  });

  it("passes helm lint with default and non-default values", () => {
    expect(k.helm(["lint", CHART]).status).toBe(0);
    const r = k.helm(["lint", CHART, "--set", "watchNamespaces={a,b}", "--set", "replicaCount=2", "--set", "serviceMonitor.enabled=true", "--set", "grafanaDashboard.enabled=true", "--set", "prometheusRule.enabled=true"]);
    expect(r.stdout + r.stderr).toContain("0 chart(s) failed");
  });

  it("renders cluster-wide RBAC by default and namespaced Roles with watchNamespaces", () => {
    expect(kinds(template())).toEqual([
      "ClusterRole/paddock",
      "ClusterRoleBinding/paddock",
      "CustomResourceDefinition/llmservices.llm.paddock.dev",
      "Deployment/paddock",
      "Role/paddock-leader-election",
      "RoleBinding/paddock-leader-election",
      "Service/paddock-metrics",
      "ServiceAccount/paddock"
    ]);
    const scoped = template(["--set", "watchNamespaces={team-a,team-b}"]);
    expect(scoped.filter((o) => o.kind === "ClusterRole")).toEqual([]);
    expect(scoped.filter((o) => o.kind === "Role" && o.metadata.name === "paddock").map((o) => o.metadata.namespace)).toEqual(["team-a", "team-b"]);
    const args = (scoped.find((o) => o.kind === "Deployment")!.spec as {template: {spec: {containers: Array<{args: string[]}>}}}).template.spec.containers[0]!.args;
    expect(args).toContain("--watch-namespaces=team-a,team-b");
  });

  it("renders the optional ServiceMonitor, PodMonitor, dashboard and alerts", () => {
    const all = template(["--set", "serviceMonitor.enabled=true", "--set", "grafanaDashboard.enabled=true", "--set", "prometheusRule.enabled=true"]);
    expect(kinds(all)).toEqual(expect.arrayContaining(["ServiceMonitor/paddock", "PodMonitor/paddock-inference", "ConfigMap/paddock-dashboard", "PrometheusRule/paddock"]));
  });

  it.each([
    ["replicaCount=-1", "replicaCount"],
    ["logLevel=verbose", "logLevel"],
    ["leaderElection.leaseDurationSeconds=1", "leaseDurationSeconds"],
    ["image.pullPolicy=Sometimes", "pullPolicy"],
    ["unknownKey=1", "unknownKey"]
  ])("rejects %s through values.schema.json", (value, field) => {
    const r = k.helm(["template", "paddock", CHART, "--set", value]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(field);
  });

  it("ships the same CRD as crds/, kept on uninstall", () => {
    const chartCrd = template().find((o) => o.kind === "CustomResourceDefinition")!;
    expect(chartCrd.metadata.annotations).toEqual({"helm.sh/resource-policy": "keep"});
    delete chartCrd.metadata.annotations;
    expect(chartCrd).toEqual(parse(readFileSync(resolve(REPO_ROOT, "crds/llmservices.yaml"), "utf8")));
  });

  it("references only metrics that Paddock's programs export, in the dashboard and the alerts", () => {
    const exported = new Set<string>();
    const server = new ServerMetrics(new Registry(), {defaultMetrics: false});
    const operator = new OperatorMetrics(new Registry(), () => {});
    const router = new RouterMetrics("chat");
    for (const m of [...server.registry.getMetricsAsArray(), ...operator.registry.getMetricsAsArray(), ...router.registry.getMetricsAsArray()]) {
      exported.add(m.name);
      if (m instanceof Histogram) for (const suffix of ["_bucket", "_sum", "_count"]) exported.add(m.name + suffix);
    }
    const texts = [readFileSync(resolve(CHART, "files/dashboard.json"), "utf8"), readFileSync(resolve(CHART, "files/alerts.yaml"), "utf8")];
    const referenced = new Set(texts.flatMap((t) => t.match(/\b(?:llm|paddock)_[a-z_]+\b/g) ?? []));
    expect(referenced.size).toBeGreaterThan(10);
    // The router's metrics are on the dashboard and in the alerts too.
    expect([...referenced].filter((m) => m.startsWith("llm_router_")).length).toBeGreaterThanOrEqual(6);
    expect([...referenced].filter((m) => !exported.has(m))).toEqual([]);
  });

  it("alerts name the LlmService's namespace, scraped as the chart's ServiceMonitor and rules say", async () => {
    // No Prometheus Operator here: its translation of the rendered ServiceMonitor is written
    // out by hand (target labels namespace/service/pod/endpoint/job, honor_labels from the
    // endpoint) for a real Prometheus, which loads the rendered PrometheusRule's groups.
    const rendered = template(["--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true"]);
    const monitor = rendered.find((o) => o.kind === "ServiceMonitor")!;
    const endpoint = (monitor.spec!["endpoints"] as Array<{port: string; honorLabels?: boolean}>)[0]!;
    const groups = (rendered.find((o) => o.kind === "PrometheusRule")!.spec!["groups"] as object[]);
    const port = await freePort();
    const n = "alerts-app";
    k.kubectlResult(["create", "namespace", n]);
    const operator = OperatorProcess.start(k.kubeconfig, ["--leader-elect=false", `--health-port=${port}`, `--watch-namespaces=${n}`, "--prometheus-url=http://127.0.0.1:1"]);
    const prometheus = await PrometheusProcess.start(await freePort(), 1, {
      ruleGroups: groups,
      scrapeConfigs: [
        {
          job_name: `serviceMonitor/paddock-system/${monitor.metadata.name}/0`,
          honor_labels: endpoint.honorLabels ?? false,
          static_configs: [{targets: [`127.0.0.1:${port}`], labels: {namespace: "paddock-system", service: "paddock-metrics", pod: "paddock-7d9f-abcde", endpoint: endpoint.port, job: "paddock-metrics"}}]
        }
      ]
    });
    try {
      await operator.waitFor("leading: starting controllers");
      // Never Ready (no node has 9 GPUs), and an autoscaled one whose load cannot be read.
      expect(k.kubectlResult(["apply", "-n", n, "-f", "-"], JSON.stringify({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name: "stuck"}, spec: {model: {uri: "file:///m.gguf"}, resources: {gpus: 9}, cache: {enabled: false}}})).status).toBe(0);
      expect(k.kubectlResult(["apply", "-n", n, "-f", "-"], JSON.stringify({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name: "blind"}, spec: {model: {uri: "file:///m.gguf"}, cache: {enabled: false}, autoscaling: {enabled: true, intervalSeconds: 1}}})).status).toBe(0);
      type Alert = {labels: Record<string, string>; state: string};
      const alerts = await eventually(async () => {
        const body = (await (await fetch(`${prometheus.url}/api/v1/alerts`)).json()) as {data: {alerts: Alert[]}};
        const named = (a: string) => body.data.alerts.find((x) => x.labels["alertname"] === a);
        return named("PaddockLlmServiceNotReady") && named("PaddockAutoscalerBlind") ? body.data.alerts : undefined;
      }, 60_000, "both alerts pending");
      for (const [alert, name] of [["PaddockLlmServiceNotReady", "stuck"], ["PaddockAutoscalerBlind", "blind"]] as const) {
        expect(alerts.find((a) => a.labels["alertname"] === alert && a.labels["name"] === name)?.labels).toMatchObject({namespace: n, name});
      }
      expect(alerts.filter((a) => a.labels["namespace"] === "paddock-system")).toEqual([]);
    } finally {
      await prometheus.stop();
      await operator.stop();
    }
  });

  it("passes the API server's dry-run validation", () => {
    const r = k.helm(["template", "paddock", CHART, "--namespace", "default", "--set", "crds.install=false"]);
    const applied = k.kubectlResult(["apply", "--dry-run=server", "-f", "-"], r.stdout);
    expect(applied.stderr).toBe("");
    expect(applied.status).toBe(0);
  });

  it("ships examples the API server accepts", () => {
    const r = k.kubectlResult(["apply", "--dry-run=server", "-n", "default", "-f", resolve(REPO_ROOT, "examples")]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toHaveLength(4);
  });

  it("installs, runs the operator on its ServiceAccount's token, upgrades the CRD and uninstalls cleanly", async () => {
    // The CRD exists already (applied with kubectl, as a user upgrading to the chart would have):
    // Helm adopts it once it carries the release's ownership metadata.
    const crd = "crd/llmservices.llm.paddock.dev";
    k.kubectl(["label", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite"]);
    k.kubectl(["annotate", crd, "meta.helm.sh/release-name=paddock", "meta.helm.sh/release-namespace=paddock-system", "--overwrite"]);
    expect(k.helm(["install", "paddock", CHART, "--namespace", "paddock-system", "--create-namespace", "--wait=false"]).stderr).toBe("");
    for (const [kind, name, ns] of [["crd", "llmservices.llm.paddock.dev", ""], ["serviceaccount", "paddock", "paddock-system"], ["clusterrole", "paddock", ""], ["deployment", "paddock", "paddock-system"]] as const) {
      expect(k.kubectlResult(["get", kind, name, ...(ns ? ["-n", ns] : [])]).status).toBe(0);
    }

    // The operator as a local process, authenticated only by the chart's ServiceAccount.
    const tokenConfig = tokenKubeconfig(k, "paddock-system", "paddock");
    const kc = new KubeConfig();
    kc.loadFromFile(k.kubeconfig);
    const admin = new KubeClient(kc, {resources: VOLUME_RESOURCES});
    const volumes = new LocalVolumeProvisioner(admin, mkdtempSync(join(tmpdir(), "paddock-volumes-")));
    await volumes.start();
    const operator = OperatorProcess.start(tokenConfig, ["--leader-elect=true"], {POD_NAMESPACE: "paddock-system", POD_NAME: "chart-test"});
    try {
      await operator.waitFor("leading: starting controllers");
      k.kubectl(["create", "namespace", "chart-app"]);
      // The example as it is, but for the claim's size: the operator would ask huggingface.co
      // for the model's length, out of reach here. The shared model cache's claim is bound by
      // the local provisioner (no storage driver runs here) and KWOK completes the Job's pod.
      const example = parse(readFileSync(resolve(REPO_ROOT, "examples/llmservice.yaml"), "utf8")) as {spec: {model: Record<string, unknown>}};
      example.spec.model["cache"] = {size: "64Mi"};
      k.kubectl(["apply", "-n", "chart-app", "-f", "-"], stringify(example));
      await eventually(() => k.kubectl(["get", "llms", "tiny", "-n", "chart-app", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]) === "True", 90_000, "Ready via the chart's RBAC");
      const claim = k.kubectl(["get", "llms", "tiny", "-n", "chart-app", "-o", "jsonpath={.status.model.claimName}"]);
      expect(k.kubectl(["get", "pvc", claim, "-n", "chart-app", "-o", "jsonpath={.metadata.ownerReferences[0].name}/{.spec.resources.requests.storage}"])).toBe("tiny/64Mi");
      expect(k.kubectl(["get", "job", claim, "-n", "chart-app", "-o", "jsonpath={.status.succeeded}"])).toBe("1");
      expect(k.kubectlResult(["auth", "can-i", "get", "pods/log", "-n", "chart-app", `--kubeconfig=${tokenConfig}`]).stdout.trim()).toBe("yes");
      expect(operator.logs.filter((l) => String(l["error"] ?? "").includes("403"))).toEqual([]);
      // The operator could grant its routers their Role (it holds those rights), and they get no more.
      const routerMay = (...args: string[]) => k.kubectlResult(["auth", "can-i", ...args, "-n", "chart-app", "--as=system:serviceaccount:chart-app:tiny-router"]).stdout.trim();
      expect(routerMay("watch", "endpointslices.discovery.k8s.io")).toBe("yes");
      expect(routerMay("patch", "leases.coordination.k8s.io/tiny-demand")).toBe("yes");
      expect(routerMay("patch", "leases.coordination.k8s.io/other-demand")).toBe("no");
      expect(routerMay("get", "secrets")).toBe("no");
      expect(routerMay("list", "pods")).toBe("no");
    } finally {
      await operator.stop();
      volumes.stop();
      admin.close();
    }

    // helm upgrade carries a changed CRD (a chart's crds/ folder never would).
    const changed = join(mkdtempSync(join(tmpdir(), "paddock-chart-")), "paddock");
    cpSync(CHART, changed, {recursive: true});
    const crdPath = join(changed, "templates/crd.yaml");
    writeFileSync(crdPath, readFileSync(crdPath, "utf8").replace(/^(\s+)- paddock\n/m, "$1- paddock\n$1- upgraded-by-test\n"));
    expect(k.helm(["upgrade", "paddock", changed, "--namespace", "paddock-system"]).status).toBe(0);
    expect(k.kubectl(["get", "crd", "llmservices.llm.paddock.dev", "-o", "jsonpath={.spec.names.categories}"])).toContain("upgraded-by-test");

    expect(k.helm(["uninstall", "paddock", "--namespace", "paddock-system", "--wait"]).status).toBe(0);
    const left = k.kubectl(["get", "deployment,service,serviceaccount,role,rolebinding", "-n", "paddock-system", "-l", "app.kubernetes.io/instance=paddock", "-o", "name"]);
    expect(left.trim()).toBe("");
    expect(k.kubectl(["get", "clusterrole,clusterrolebinding", "-l", "app.kubernetes.io/instance=paddock", "-o", "name"]).trim()).toBe("");
    expect(k.kubectlResult(["get", "crd", "llmservices.llm.paddock.dev"]).status).toBe(0);
    // Put the repository's CRD back for other tests.
    k.kubectl(["apply", "-f", resolve(REPO_ROOT, "crds/llmservices.yaml")]);
  });

  it("confines a namespaced install to its namespaces: the API server forbids the rest", () => {
    for (const ns of ["scoped-system", "team-a", "team-b"]) k.kubectlResult(["create", "namespace", ns]);
    const r = k.helm(["install", "scoped", CHART, "--namespace", "scoped-system", "--set", "crds.install=false", "--set", "watchNamespaces={team-a}"]);
    expect(r.stderr).toBe("");
    const asOperator = tokenKubeconfig(k, "scoped-system", "scoped-paddock");
    const get = (ns: string) => k.kubectlResult(["get", "llmservices,deployments", "-n", ns, `--kubeconfig=${asOperator}`]);
    expect(get("team-a").status).toBe(0);
    const denied = get("team-b");
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toContain('"system:serviceaccount:scoped-system:scoped-paddock" cannot list resource "llmservices"');
    expect(k.kubectlResult(["get", "secrets", "-n", "team-a", `--kubeconfig=${asOperator}`]).stderr).toContain("forbidden");
    expect(k.helm(["uninstall", "scoped", "--namespace", "scoped-system"]).status).toBe(0);
  });
});
