/** Fake nodes of the local cluster. KWOK plays their kubelets; nothing runs on them. */
export interface NodePlan {
  /** Nodes with GPUs. Defaults to 2. */
  readonly gpuNodes: number;
  /** `nvidia.com/gpu` capacity of each GPU node. Defaults to 8. */
  readonly gpusPerNode: number;
  /** Nodes without GPUs. Defaults to 1. */
  readonly cpuNodes: number;
}

export const DEFAULT_NODES: NodePlan = {gpuNodes: 2, gpusPerNode: 8, cpuNodes: 1};

/** The annotation KWOK is told to manage (`--manage-nodes-with-annotation-selector`). */
export const KWOK_NODE_ANNOTATION = {key: "kwok.x-k8s.io/node", value: "fake"} as const;

/** Label that tells Paddock's fake nodes apart from any other node. */
export const FAKE_NODE_LABEL = "paddock.dev/fake-node";

/**
 * Node objects shaped like real GPU machines: an 8x H100 node is 96 cores / 768 GiB with
 * NVIDIA's GPU feature-discovery labels; the CPU node is a 16-core / 64 GiB worker.
 */
export function nodeManifests(plan: NodePlan): object[] {
  const gpu = Array.from({length: plan.gpuNodes}, (_, i) =>
    node(`paddock-gpu-${i}`, {
      labels: {
        "node.kubernetes.io/instance-type": `gpu-${plan.gpusPerNode}x-h100`,
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "nvidia.com/gpu.memory": "81559",
        "nvidia.com/gpu.count": String(plan.gpusPerNode)
      },
      capacity: {cpu: "96", memory: "768Gi", pods: "110", "ephemeral-storage": "2Ti", "nvidia.com/gpu": String(plan.gpusPerNode)}
    })
  );
  const cpu = Array.from({length: plan.cpuNodes}, (_, i) =>
    node(`paddock-cpu-${i}`, {
      labels: {"node.kubernetes.io/instance-type": "cpu-16x"},
      capacity: {cpu: "16", memory: "64Gi", pods: "110", "ephemeral-storage": "500Gi"}
    })
  );
  return [...gpu, ...cpu];
}

function node(name: string, shape: {labels: Record<string, string>; capacity: Record<string, string>}): object {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: {[KWOK_NODE_ANNOTATION.key]: KWOK_NODE_ANNOTATION.value, "node.alpha.kubernetes.io/ttl": "0"},
      labels: {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "topology.kubernetes.io/zone": "local-a",
        type: "kwok",
        [FAKE_NODE_LABEL]: "true",
        ...shape.labels
      }
    },
    spec: {},
    // KWOK's node-initialize stage fills in conditions, addresses and nodeInfo.
    status: {allocatable: shape.capacity, capacity: shape.capacity}
  };
}
