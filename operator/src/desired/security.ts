import type {V1PodSecurityContext, V1SecurityContext} from "@kubernetes/client-node";

/** Every Paddock container: no privilege escalation, read-only root, non-root, no capabilities. */
export const containerSecurity: V1SecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: {drop: ["ALL"]}
};

/** Pods running the inference image (servers and downloads): its non-root user, and volumes writable by its group. */
export const inferencePodSecurity: V1PodSecurityContext = {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: {type: "RuntimeDefault"}};
