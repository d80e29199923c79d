/**
 * Local Kubernetes control plane for tests and development.
 *
 *   npm run cluster:up [-- --gpu-nodes 2 --gpus-per-node 8 --cpu-nodes 1]
 *   npm run cluster:down
 *
 * `up` builds (or reuses) the binaries, starts the cluster and prints
 * `export KUBECONFIG=<path>` as its last line. State lives in PADDOCK_CLUSTER_DIR
 * (default: .paddock/cluster in the checkout).
 */
import {parseArgs} from "node:util";
import {clusterDir, ensureBinaries} from "./locate.js";
import {ClusterError, clusterDown, clusterUp} from "./cluster.js";
import {DEFAULT_NODES} from "./nodes.js";

const [command, ...rest] = process.argv.slice(2);
const {values} = parseArgs({
  args: rest,
  options: {
    "gpu-nodes": {type: "string", default: String(DEFAULT_NODES.gpuNodes)},
    "gpus-per-node": {type: "string", default: String(DEFAULT_NODES.gpusPerNode)},
    "cpu-nodes": {type: "string", default: String(DEFAULT_NODES.cpuNodes)}
  }
});

const count = (name: string, value: string | undefined): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 5000) throw new ClusterError(`--${name} must be an integer from 0 to 5000, got '${value}'`);
  return n;
};

try {
  const dir = clusterDir();
  if (command === "up") {
    const nodes = {
      gpuNodes: count("gpu-nodes", values["gpu-nodes"]),
      gpusPerNode: count("gpus-per-node", values["gpus-per-node"]),
      cpuNodes: count("cpu-nodes", values["cpu-nodes"])
    };
    const binDir = ensureBinaries();
    const t0 = Date.now();
    const state = await clusterUp({dir, binDir, nodes, log: (m) => console.log(`cluster: ${m}`)});
    console.log(`cluster: up in ${((Date.now() - t0) / 1000).toFixed(1)} s; API server ${state.server}`);
    console.log(`cluster: kubectl, helm and kwok are in ${binDir}`);
    console.log(`cluster: logs in ${dir}/logs; stop with 'npm run cluster:down'`);
    console.log(`export KUBECONFIG=${state.kubeconfig}`);
  } else if (command === "down") {
    console.log((await clusterDown(dir)) ? "cluster: stopped" : "cluster: none running");
  } else {
    throw new ClusterError(`usage: cli.js up [--gpu-nodes N] [--gpus-per-node N] [--cpu-nodes N] | down`);
  }
} catch (error) {
  console.error(error instanceof ClusterError ? `cluster: ${error.message}` : error);
  process.exit(1);
}
