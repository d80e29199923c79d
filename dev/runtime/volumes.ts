import {mkdirSync, writeFileSync} from "node:fs";
import {join} from "node:path";
import type {ObjectData, Pod} from "./pod.js";
import {PlanError} from "./pod-plan.js";

/** The local folder behind a PersistentVolumeClaim (local-volumes.ts), or why there is none. */
export type ClaimFolder = (namespace: string, claimName: string) => Promise<{path: string} | {error: string}>;

/**
 * The pod's volumes as local folders: emptyDir under the pod's folder, hostPath through
 * `hostPath` (e.g. /models -> the checkout's model folder), Secret and ConfigMap written
 * as files, the service account token volume as its three files, a PersistentVolumeClaim as
 * its bound volume's folder (read-only is not enforced). Other kinds cannot run locally and
 * fail as the kubelet reports it.
 */
export async function prepareVolumes(pod: Pod, podDir: string, data: ObjectData, hostPath: (path: string) => string, claimFolder: ClaimFolder, serviceAccount?: {token: string; caCert: string}): Promise<Map<string, string>> {
  const volumes = new Map<string, string>();
  const {namespace} = pod.metadata;
  for (const v of pod.spec.volumes ?? []) {
    const dir = join(podDir, "volumes", v.name);
    if (v.hostPath) {
      volumes.set(v.name, hostPath(v.hostPath.path));
    } else if (v.emptyDir) {
      mkdirSync(dir, {recursive: true});
      volumes.set(v.name, dir);
    } else if (v.secret || v.configMap) {
      const kind = v.secret ? "secrets" : "configmaps";
      const name = v.secret ? v.secret.secretName : v.configMap!.name;
      const obj = await data(kind, namespace, name);
      if (!obj) throw new PlanError("CreateContainerConfigError", `${kind.slice(0, -1)} "${name}" not found`);
      mkdirSync(dir, {recursive: true});
      const items = (v.secret ?? v.configMap)!.items ?? Object.keys(obj).map((key) => ({key, path: key}));
      for (const item of items) {
        const raw = obj[item.key];
        if (raw === undefined) throw new PlanError("CreateContainerConfigError", `key "${item.key}" not found in ${kind.slice(0, -1)} "${name}"`);
        writeFileSync(join(dir, item.path), v.secret ? Buffer.from(raw, "base64") : raw, {mode: 0o600});
      }
      volumes.set(v.name, dir);
    } else if (v.persistentVolumeClaim) {
      const folder = await claimFolder(namespace, v.persistentVolumeClaim.claimName);
      if ("error" in folder) throw new PlanError("FailedMount", `volume ${v.name}: ${folder.error}`);
      volumes.set(v.name, folder.path);
    } else if (v.projected?.sources?.some((source) => source.serviceAccountToken) && serviceAccount) {
      // The API server's ServiceAccount admission adds this one (kube-api-access-*): the
      // token, the cluster CA and the namespace, as a kubelet writes them.
      mkdirSync(dir, {recursive: true});
      writeFileSync(join(dir, "token"), serviceAccount.token, {mode: 0o600});
      writeFileSync(join(dir, "ca.crt"), serviceAccount.caCert);
      writeFileSync(join(dir, "namespace"), namespace);
      volumes.set(v.name, dir);
    } else {
      throw new PlanError("CreateContainerConfigError", `volume ${v.name}: only emptyDir, hostPath, secret, configMap, persistentVolumeClaim and service account token volumes run locally`);
    }
  }
  return volumes;
}
