import {KWOK_NODE_ANNOTATION, nodeManifests} from "../../dev/cluster/nodes.js";

interface NodeShape {
  metadata: {name: string; annotations: Record<string, string>; labels: Record<string, string>};
  status: {capacity: Record<string, string>; allocatable: Record<string, string>};
}

describe("fake node manifests", () => {
  it("builds the requested GPU and CPU nodes, all managed by KWOK", () => {
    const nodes = nodeManifests({gpuNodes: 3, gpusPerNode: 4, cpuNodes: 2}) as NodeShape[];
    expect(nodes.map((n) => n.metadata.name)).toEqual(["paddock-gpu-0", "paddock-gpu-1", "paddock-gpu-2", "paddock-cpu-0", "paddock-cpu-1"]);
    expect(nodes.every((n) => n.metadata.annotations[KWOK_NODE_ANNOTATION.key] === KWOK_NODE_ANNOTATION.value)).toBe(true);
    expect(nodes.slice(0, 3).every((n) => n.status.capacity["nvidia.com/gpu"] === "4" && n.status.allocatable["nvidia.com/gpu"] === "4")).toBe(true);
    expect(nodes.slice(3).every((n) => n.status.capacity["nvidia.com/gpu"] === undefined)).toBe(true);
    expect(nodes[0]!.metadata.labels["nvidia.com/gpu.count"]).toBe("4");
  });

  it("scales to hundreds of nodes with unique names", () => {
    const nodes = nodeManifests({gpuNodes: 300, gpusPerNode: 8, cpuNodes: 0}) as NodeShape[];
    expect(new Set(nodes.map((n) => n.metadata.name)).size).toBe(300);
  });
});
