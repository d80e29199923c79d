import {releaseModelObjects} from "../../operator/src/controller/reconciler.js";
import type {KubeObject} from "../../operator/src/kube/kube-client.js";
import {useNamespaceClient} from "../helpers/cluster.js";

/**
 * Two services moving off a shared model at once, against the real API server: each read
 * the claim with both owners, so each thought the other stayed and only removed itself.
 * Unconditioned, the claim ended with no owner, and the garbage collector never took it.
 * The release is now conditional on the resourceVersion it was read at (issue #26, item 14).
 */
describe("letting go of a shared model claim", () => {
  const ns = "model-cache-writes";
  const c = useNamespaceClient(ns);

  const owners = () => (JSON.parse(c.k.kubectl(["get", "pvc", "shared", "-n", ns, "-o", "json"])) as {metadata: {ownerReferences?: Array<{uid: string}>}}).metadata.ownerReferences?.map((r) => r.uid) ?? [];

  it("a release from a stale read is refused, so the claim keeps its last owner, who then deletes it", async () => {
    const {k, kube} = c;
    // Two owners (ConfigMaps stand in for the LlmServices: only their uids matter here).
    const uid = (name: string) => (JSON.parse(k.kubectl(["create", "configmap", name, "-n", ns, "-o", "json"])) as {metadata: {uid: string}}).metadata.uid;
    const [a, b] = [uid("service-a"), uid("service-b")];
    const owner = (name: string, u: string) => ({apiVersion: "v1", kind: "ConfigMap", name, uid: u});
    k.kubectl(["apply", "-f", "-"], JSON.stringify({apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: {name: "shared", namespace: ns, ownerReferences: [owner("service-a", a), owner("service-b", b)]}, spec: {accessModes: ["ReadWriteOnce"], resources: {requests: {storage: "1Mi"}}}}));
    const read = JSON.parse(k.kubectl(["get", "pvc", "shared", "-n", ns, "-o", "json"])) as {metadata: {resourceVersion: string}};
    const asRead: KubeObject = {apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: {name: "shared", namespace: ns, resourceVersion: read.metadata.resourceVersion}};
    // Both read [a, b]; b lets go first.
    await releaseModelObjects(kube, b, [asRead], []);
    expect(owners()).toEqual([a]);
    // a lets go from its stale read: refused (409), and nothing is thrown: the watch brings the claim back.
    await releaseModelObjects(kube, a, [asRead], []);
    expect(owners()).toEqual([a]);
    // a's next plan sees it is the last owner and deletes it, conditioned likewise.
    const fresh = JSON.parse(k.kubectl(["get", "pvc", "shared", "-n", ns, "-o", "json"])) as {metadata: {resourceVersion: string}};
    await releaseModelObjects(kube, a, [], [{...asRead, metadata: {...asRead.metadata, resourceVersion: fresh.metadata.resourceVersion}}]);
    const gone = k.kubectlResult(["get", "pvc", "shared", "-n", ns, "-o", "json"]);
    const left = gone.status === 0 ? (JSON.parse(gone.stdout) as {metadata: {deletionTimestamp?: string}}).metadata.deletionTimestamp : "deleted";
    expect(left).toBeDefined();
  });
});
