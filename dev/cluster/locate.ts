import {spawnSync} from "node:child_process";
import {resolve} from "node:path";
import {REPO_ROOT} from "../paths.js";
import {ClusterError} from "./cluster.js";

/** Where the local cluster keeps its state: PADDOCK_CLUSTER_DIR or .paddock/cluster in the checkout. */
export function clusterDir(): string {
  return process.env["PADDOCK_CLUSTER_DIR"] ?? resolve(REPO_ROOT, ".paddock/cluster");
}

/** Builds the control-plane binaries if the cache lacks them; returns their folder. */
export function ensureBinaries(): string {
  const result = spawnSync("bash", [resolve(REPO_ROOT, "dev/cluster/build.sh")], {encoding: "utf8", stdio: ["ignore", "pipe", "inherit"]});
  if (result.status !== 0) throw new ClusterError("dev/cluster/build.sh failed (see above)");
  return result.stdout.trim().split("\n").at(-1)!;
}
