import {chmodSync, mkdirSync, rmSync} from "node:fs";
import {join} from "node:path";
import {isConflict, type KubeClient, type ResourceTable} from "../../operator/src/kube/kube-client.js";

/** The local cluster's default StorageClass and its provisioner's name. */
export const LOCAL_STORAGE_CLASS = "paddock-local";
export const LOCAL_PROVISIONER = "paddock.dev/local-folder";

/** Kinds the provisioner writes beyond the operator's: give them to its KubeClient. */
export const VOLUME_RESOURCES: ResourceTable = {
  "v1/PersistentVolume": {group: "api/v1", resource: "persistentvolumes", namespaced: false},
  "storage.k8s.io/v1/StorageClass": {group: "apis/storage.k8s.io/v1", resource: "storageclasses", namespaced: false}
};

interface Claim {
  metadata: {name: string; namespace: string; uid: string; annotations?: Record<string, string>};
  spec: {storageClassName?: string; volumeName?: string; accessModes?: string[]; resources?: {requests?: {storage?: string}}};
}
interface Volume {
  metadata: {name: string; annotations?: Record<string, string>};
  spec: {hostPath?: {path: string}};
  status?: {phase?: string};
}

/**
 * Dynamic provisioning for the local cluster, as a CSI external provisioner would do it:
 * a default StorageClass, and for each claim of that class a PersistentVolume backed by a
 * folder under `root` (the kube-controller-manager's binder then binds the two). Released
 * volumes are deleted with their folder (reclaim policy Delete). Development and tests only:
 * no storage driver runs here, and a folder enforces neither size nor read-only mounts.
 */
export class LocalVolumeProvisioner {
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(
    private readonly kube: KubeClient,
    private readonly root: string,
    private readonly log: (message: string, fields?: Record<string, unknown>) => void = () => {}
  ) {
    mkdirSync(root, {recursive: true});
  }

  async start(): Promise<void> {
    const storageClass = {
      apiVersion: "storage.k8s.io/v1",
      kind: "StorageClass",
      metadata: {name: LOCAL_STORAGE_CLASS, annotations: {"storageclass.kubernetes.io/is-default-class": "true"}},
      provisioner: LOCAL_PROVISIONER,
      reclaimPolicy: "Delete",
      volumeBindingMode: "Immediate"
    };
    await this.kube.apply(storageClass, "paddock-dev-runtime");
    await this.#sync();
    this.#timer = setInterval(() => void this.#sync(), 500);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #sync(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const claims = await this.kube.list<Claim>("/api/v1/persistentvolumeclaims");
      for (const c of claims.items) {
        if (c.spec.volumeName || (c.spec.storageClassName ?? LOCAL_STORAGE_CLASS) !== LOCAL_STORAGE_CLASS) continue;
        await this.#provision(c);
      }
      const volumes = await this.kube.list<Volume>("/api/v1/persistentvolumes");
      for (const v of volumes.items) {
        if (v.metadata.annotations?.["pv.kubernetes.io/provisioned-by"] !== LOCAL_PROVISIONER || v.status?.phase !== "Released") continue;
        if (v.spec.hostPath?.path.startsWith(this.root)) rmSync(v.spec.hostPath.path, {recursive: true, force: true});
        await this.kube.delete({apiVersion: "v1", kind: "PersistentVolume", metadata: {name: v.metadata.name}});
        this.log("volume deleted", {volume: v.metadata.name});
      }
    } catch (e) {
      this.log("volume sync failed", {error: String(e)});
    } finally {
      this.#busy = false;
    }
  }

  async #provision(c: Claim): Promise<void> {
    const name = `pvc-${c.metadata.uid}`;
    const path = join(this.root, `${c.metadata.namespace}_${c.metadata.name}_${c.metadata.uid.slice(0, 8)}`);
    mkdirSync(path, {recursive: true});
    // Writable by every pod, as local-path-provisioner makes its folders: a hostPath volume
    // gets no fsGroup, and the download Job runs as the image's non-root user (found on the
    // real node: EACCES on a root-owned folder).
    chmodSync(path, 0o777);
    const volume = {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: {name, annotations: {"pv.kubernetes.io/provisioned-by": LOCAL_PROVISIONER}},
      spec: {
        capacity: {storage: c.spec.resources?.requests?.storage ?? "1Gi"},
        accessModes: c.spec.accessModes ?? ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Delete",
        storageClassName: LOCAL_STORAGE_CLASS,
        claimRef: {apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: c.metadata.namespace, name: c.metadata.name, uid: c.metadata.uid},
        hostPath: {path, type: "Directory"}
      }
    };
    try {
      await this.kube.create(volume);
      this.log("volume provisioned", {claim: `${c.metadata.namespace}/${c.metadata.name}`, volume: name, path});
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
  }
}

/** The local folder behind a claim (its bound volume's hostPath), or why there is none. */
export async function claimFolder(kube: KubeClient, namespace: string, claimName: string): Promise<{path: string} | {error: string}> {
  const claim = await kube.get<Claim & {status?: {phase?: string}}>(`/api/v1/namespaces/${namespace}/persistentvolumeclaims/${claimName}`);
  if (!claim) return {error: `persistentvolumeclaim "${claimName}" not found`};
  if (!claim.spec.volumeName || claim.status?.phase !== "Bound") return {error: `persistentvolumeclaim "${claimName}" is not bound`};
  const volume = await kube.get<Volume>(`/api/v1/persistentvolumes/${claim.spec.volumeName}`);
  if (!volume?.spec.hostPath) return {error: `persistentvolume "${claim.spec.volumeName}" is not a local folder`};
  return {path: volume.spec.hostPath.path};
}
