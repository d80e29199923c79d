// Stops the cluster the test run started (test/helpers/cluster.ts), unless
// PADDOCK_KEEP_TEST_CLUSTER=1 asks to keep it for the next run. A cluster given by
// KUBECONFIG is never touched. Uses the compiled module: `npm test` builds first.
import {existsSync} from "node:fs";
import {dirname, join, resolve} from "node:path";
import {fileURLToPath} from "node:url";

export default async function globalTeardown() {
  if (process.env.KUBECONFIG || process.env.PADDOCK_KEEP_TEST_CLUSTER === "1") return;
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const dir = process.env.PADDOCK_TEST_CLUSTER_DIR ?? join(root, ".paddock/test-cluster");
  if (!existsSync(join(dir, "started-by-tests"))) return;
  const {clusterDown} = await import(join(root, "dist/dev/cluster/cluster.js"));
  await clusterDown(dir);
}
