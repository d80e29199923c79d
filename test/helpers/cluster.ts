import {KubeConfig} from "@kubernetes/client-node";
import {spawnSync} from "node:child_process";
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join, resolve} from "node:path";
import {parse, stringify} from "yaml";
import {auditLogPath, clusterUp, readState, runningComponents} from "../../dev/cluster/cluster.js";
import {ensureBinaries} from "../../dev/cluster/locate.js";
import {DEFAULT_NODES} from "../../dev/cluster/nodes.js";
import {REPO_ROOT} from "../../dev/paths.js";
import {sleep} from "../../dev/processes/server.js";
import {KubeClient} from "../../operator/src/kube/kube-client.js";

/** The test run's own cluster folder, apart from a developer's `npm run cluster:up` one. */
export const TEST_CLUSTER_DIR = process.env["PADDOCK_TEST_CLUSTER_DIR"] ?? resolve(REPO_ROOT, ".paddock/test-cluster");
/**
 * Nodes of the test run's cluster: more GPU nodes than `cluster:up`'s default, since every
 * test file shares it and GPU pods of one file must not starve the next.
 */
export const TEST_NODES = {...DEFAULT_NODES, gpuNodes: 4};
/** Marker: this cluster was started by the test run, so global teardown stops it. */
export const STARTED_BY_TESTS = "started-by-tests";

export interface TestCluster {
  readonly kubeconfig: string;
  readonly binDir: string;
  /** The API server's audit log (writes only, see dev/cluster/cluster.ts); undefined for a cluster given by KUBECONFIG. */
  readonly auditLog: string | undefined;
  /** Runs the cluster's kubectl; throws with stderr on a non-zero exit. */
  kubectl(args: string[], input?: string): string;
  /** Runs kubectl and returns its exit status and output, for asserting failures. */
  kubectlResult(args: string[], input?: string): {status: number; stdout: string; stderr: string};
  /** Runs the cluster's helm. */
  helm(args: string[]): {status: number; stdout: string; stderr: string};
}

let current: Promise<TestCluster> | undefined;

/**
 * The real control plane for tests: the one KUBECONFIG names, or one this test run
 * starts on first use (and test/jest-global-teardown.mjs stops).
 */
export function useCluster(): Promise<TestCluster> {
  current ??= start();
  return current;
}

async function start(): Promise<TestCluster> {
  const binDir = ensureBinaries();
  const given = process.env["KUBECONFIG"];
  if (given) return handle(given, binDir, undefined);
  const lock = `${TEST_CLUSTER_DIR}.lock`;
  mkdirSync(resolve(TEST_CLUSTER_DIR, ".."), {recursive: true});
  // Parallel jest workers must not start two clusters: a directory is an atomic lock.
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      await sleep(200);
    }
  }
  try {
    const state = readState(TEST_CLUSTER_DIR);
    if (state && runningComponents(state).length === 5) return handle(state.kubeconfig, binDir, auditLogPath(TEST_CLUSTER_DIR));
    const fresh = await clusterUp({dir: TEST_CLUSTER_DIR, binDir, nodes: TEST_NODES});
    writeFileSync(join(TEST_CLUSTER_DIR, STARTED_BY_TESTS), String(process.pid));
    return handle(fresh.kubeconfig, binDir, auditLogPath(TEST_CLUSTER_DIR));
  } finally {
    rmSync(lock, {recursive: true, force: true});
  }
}

function handle(kubeconfig: string, binDir: string, auditLog: string | undefined): TestCluster {
  if (!existsSync(kubeconfig)) throw new Error(`kubeconfig ${kubeconfig} does not exist`);
  const run = (binary: string, args: string[], input?: string) => {
    const r = spawnSync(join(binDir, binary), args, {input, encoding: "utf8", env: {...process.env, KUBECONFIG: kubeconfig}});
    return {status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr};
  };
  return {
    kubeconfig,
    binDir,
    auditLog: auditLog && existsSync(auditLog) ? auditLog : undefined,
    kubectlResult: (args, input) => run("kubectl", args, input),
    kubectl: (args, input) => {
      const r = run("kubectl", args, input);
      if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
      return r.stdout;
    },
    helm: (args) => run("helm", args)
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails with the last error. */
export async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
    await sleep(200);
  }
}

/** A kubeconfig that authenticates only with a ServiceAccount token (no admin certificate). */
export function tokenKubeconfig(k: TestCluster, namespace: string, serviceAccount: string): string {
  const token = k.kubectl(["create", "token", serviceAccount, "-n", namespace]).trim();
  const admin = parse(readFileSync(k.kubeconfig, "utf8")) as {clusters: Array<{cluster: Record<string, string>}>};
  const path = join(mkdtempSync(join(tmpdir(), "paddock-sa-")), "kubeconfig");
  writeFileSync(
    path,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{name: "c", cluster: admin.clusters[0]!.cluster}],
      users: [{name: serviceAccount, user: {token}}],
      contexts: [{name: "sa", context: {cluster: "c", user: serviceAccount, namespace}}],
      "current-context": "sa"
    })
  );
  return path;
}

/**
 * For one describe block: the shared test cluster, the operator's REST client on it, and a
 * namespace of the block's own, deleted afterwards (`beforeDelete` runs first, e.g. to drop
 * a finalizer the test left).
 */
export function useNamespaceClient(namespace: string, options: {beforeDelete?: (k: TestCluster) => void} = {}): {readonly k: TestCluster; readonly kube: KubeClient} {
  const ctx = {} as {k: TestCluster; kube: KubeClient};
  beforeAll(async () => {
    ctx.k = await useCluster();
    const kc = new KubeConfig();
    kc.loadFromFile(ctx.k.kubeconfig);
    ctx.kube = new KubeClient(kc);
    ctx.k.kubectl(["create", "namespace", namespace]);
  });
  afterAll(() => {
    options.beforeDelete?.(ctx.k);
    ctx.k.kubectlResult(["delete", "namespace", namespace, "--wait=false"]);
    ctx.kube.close();
  });
  return ctx;
}
