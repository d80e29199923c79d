import {readFileSync} from "node:fs";
import {resolve} from "node:path";
import {stringify} from "yaml";
import {REPO_ROOT} from "../../dev/paths.js";
import {KubeConfig} from "@kubernetes/client-node";
import {OperatorProcess} from "../../dev/processes/operator.js";
import {KubeClient, WriteForbiddenError} from "../../operator/src/kube/kube-client.js";
import {eventually, tokenKubeconfig, useCluster, type TestCluster} from "../helpers/cluster.js";
import {example, llmServices} from "../helpers/llmservices.js";

/**
 * Leader election of real operator processes against the real control plane. Who wrote
 * what is read from the API server's audit log (dev/cluster/audit.ts); each operator
 * sends its pod name in its User-Agent, leader election's requests marked as such.
 */
type Deployment = {spec: {replicas: number}};
type AuditEvent = {userAgent?: string; verb: string; requestURI: string; requestReceivedTimestamp: string; responseStatus?: {code: number}};

describe("leader election", () => {
  let k: TestCluster;
  const {namespace, get, apply, waitReady, cleanup} = llmServices(() => k, "le");
  /** Writes by one operator instance (its pod name) in the audit log, and whether each was leader election's. */
  const writesBy = (who: string) =>
    readFileSync(k.auditLog!, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as AuditEvent)
      .filter((e) => e.userAgent?.startsWith(`paddock-operator/${who}`))
      .map((e) => ({...e, at: Date.parse(e.requestReceivedTimestamp), election: e.userAgent!.includes("(leader-election)")}));

  beforeAll(async () => {
    k = await useCluster();
    k.kubectl(["apply", "-f", resolve(REPO_ROOT, "crds/llmservices.yaml")]);
    await eventually(() => k.kubectlResult(["get", "llms", "-A"]).status === 0, 30_000, "CRD established");
  }, 600_000);
  afterAll(() => cleanup());

  it("a write its guard allowed is not sent if the guard refuses by the time the connection is ready", async () => {
    const n = namespace();
    const kc = new KubeConfig();
    kc.loadFromFile(k.kubeconfig);
    // Allowed when the request starts, refused at the last moment: as for a leader frozen
    // in between (SIGSTOP) while its lease passed to another instance.
    let asked = 0;
    const kube = new KubeClient(kc, {mayWrite: () => ++asked === 1});
    try {
      await expect(kube.apply({apiVersion: "v1", kind: "Secret", metadata: {name: "late", namespace: n}}, "test")).rejects.toBeInstanceOf(WriteForbiddenError);
      expect(asked).toBe(2);
      expect(k.kubectlResult(["get", "secret", "late", "-n", n]).stderr).toMatch(/NotFound/);
    } finally {
      kube.close();
    }
  });

  it("elects one leader among two operators and fails over when it dies", async () => {
    const lease = ["--leader-elect=true", "--leader-election-lease=paddock-test-leader", "--lease-duration-seconds=3"];
    const first = OperatorProcess.start(k.kubeconfig, lease, {POD_NAME: "op-a"});
    await first.waitFor("leading: starting controllers");
    const second = OperatorProcess.start(k.kubeconfig, lease, {POD_NAME: "op-b"});
    await second.waitFor("following: another instance holds the leader lease");
    expect(second.isLeader).toBe(false);
    expect(get<{spec: {holderIdentity: string}}>("lease", "paddock-test-leader", "default").spec.holderIdentity).toBe("op-a");

    await first.kill();
    await second.waitFor("leading: starting controllers", 15_000);
    expect(get<{spec: {holderIdentity: string}}>("lease", "paddock-test-leader", "default").spec.holderIdentity).toBe("op-b");
    const n = namespace();
    apply(n, "after-failover", example.spec);
    await waitReady(n, "after-failover");
    expect(await second.stop()).toBe(0);
  });

  it("stops writing before its lease can expire when it cannot renew, so two leaders never write at once", async () => {
    if (!k.auditLog) throw new Error("this test reads the API server's audit log: run it on the test run's own cluster, not a KUBECONFIG one");
    const n = namespace();
    // Two operators on their own ServiceAccounts. Each may do its work in n; the lease is a
    // separate grant, so one can lose it (renewals refused) while its other writes still pass.
    const rbac = (kind: string, name: string, rules: object) => ({apiVersion: "rbac.authorization.k8s.io/v1", kind, metadata: {name, namespace: n}, ...rules});
    const binding = (name: string, role: string, sa: string) => rbac("RoleBinding", name, {roleRef: {apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role}, subjects: [{kind: "ServiceAccount", name: sa, namespace: n}]});
    const objects = [
      {apiVersion: "v1", kind: "ServiceAccount", metadata: {name: "op-a", namespace: n}},
      {apiVersion: "v1", kind: "ServiceAccount", metadata: {name: "op-b", namespace: n}},
      rbac("Role", "work", {rules: [{apiGroups: ["", "apps", "policy", "networking.k8s.io", "events.k8s.io", "llm.paddock.dev"], resources: ["*"], verbs: ["*"]}]}),
      rbac("Role", "lease", {rules: [{apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["*"]}]}),
      binding("work-a", "work", "op-a"),
      binding("work-b", "work", "op-b"),
      binding("lease-a", "lease", "op-a"),
      binding("lease-b", "lease", "op-b")
    ];
    k.kubectl(["apply", "-f", "-"], stringify({apiVersion: "v1", kind: "List", items: objects}));
    const lease = ["--leader-elect=true", "--leader-election-lease=paddock-renew-leader", "--lease-duration-seconds=6", `--watch-namespaces=${n}`];
    const a = OperatorProcess.start(tokenKubeconfig(k, n, "op-a"), lease, {POD_NAME: "renew-a", POD_NAMESPACE: n});
    await a.waitFor("leading: starting controllers");
    const b = OperatorProcess.start(tokenKubeconfig(k, n, "op-b"), lease, {POD_NAME: "renew-b", POD_NAMESPACE: n});
    await b.waitFor("following: another instance holds the leader lease");
    apply(n, "contended", example.spec);
    await waitReady(n, "contended");

    k.kubectl(["delete", "rolebinding", "lease-a", "-n", n]);
    // Keep giving the leader, whoever it is, something to write: a replica count to revert.
    let writes = 0;
    while (!b.isLeader || writes < 10) {
      k.kubectlResult(["scale", "deployment/contended", "--replicas=3", "-n", n]);
      writes += b.isLeader ? 1 : 0;
      await new Promise((r) => setTimeout(r, 150));
      if (writes === 0 && Date.now() - a.startedAt > 60_000) throw new Error("B never took over");
    }
    expect(await a.exited).toBe(1);
    expect(a.logs.filter((l) => l.msg === "renewing the leader lease failed").length).toBeGreaterThan(0);
    expect(String(a.logs.find((l) => l.msg === "lost the leader lease; exiting")?.["why"])).toMatch(/no successful renewal/);

    const bStarted = Math.min(...writesBy("renew-b").filter((e) => !e.election).map((e) => e.at));
    expect(Number.isFinite(bStarted)).toBe(true);
    const aWrites = writesBy("renew-a").filter((e) => !e.election);
    expect(aWrites.length).toBeGreaterThan(0); // the audit log does see A's writes
    expect(aWrites.filter((e) => e.at >= bStarted).map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
    expect(await b.stop()).toBe(0);
  }, 120_000);

  it("never has two leaders writing: a leader cut off (SIGSTOP) writes nothing once resumed, and exits", async () => {
    if (!k.auditLog) throw new Error("this test reads the API server's audit log: run it on the test run's own cluster, not a KUBECONFIG one");
    const n = namespace();
    const lease = ["--leader-elect=true", "--leader-election-lease=paddock-partition-leader", "--lease-duration-seconds=6", `--watch-namespaces=${n}`];
    const a = OperatorProcess.start(k.kubeconfig, lease, {POD_NAME: "partition-a"});
    await a.waitFor("leading: starting controllers");
    const b = OperatorProcess.start(k.kubeconfig, lease, {POD_NAME: "partition-b"});
    await b.waitFor("following: another instance holds the leader lease");
    apply(n, "before", example.spec);
    await waitReady(n, "before");

    a.child.kill("SIGSTOP"); // cut off: it neither renews nor knows it should stop
    try {
      await b.waitFor("leading: starting controllers", 30_000);
      apply(n, "during", example.spec);
      await waitReady(n, "during");
      // While A is frozen, change what A would fix on its next reconcile.
      k.kubectl(["scale", "deployment/before", "--replicas=3", "-n", n]);
      await eventually(() => get<Deployment>("deployment", "before", n).spec.replicas === 1, 30_000, "B reverted the scale");
    } finally {
      a.child.kill("SIGCONT");
    }
    expect(await a.exited).toBe(1);
    expect(a.logs.find((l) => l.msg === "lost the leader lease; exiting")?.["why"]).toBeDefined();

    const bStarted = Math.min(...writesBy("partition-b").filter((e) => !e.election).map((e) => e.at));
    expect(Number.isFinite(bStarted)).toBe(true);
    const aAfter = writesBy("partition-a").filter((e) => e.at >= bStarted);
    // A may still try its lease (and be refused by the resourceVersion check); nothing else.
    expect(aAfter.filter((e) => !e.election).map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
    expect(aAfter.filter((e) => (e.responseStatus?.code ?? 0) < 300)).toEqual([]);
    expect(writesBy("partition-a").length).toBeGreaterThan(0); // the audit log does see A's writes

    expect(await b.stop()).toBe(0);
  }, 120_000);
});
