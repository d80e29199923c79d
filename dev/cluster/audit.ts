import {join} from "node:path";

/** Where the API server's audit log goes (JSON lines); auditLogPath(dir) for a cluster folder. */
export const auditLogPath = (dir: string) => join(dir, "logs", "audit.log");

/**
 * Audit policy: writes by anyone but the control plane's own components, at Metadata level
 * (who, what, when, user agent, response code; no bodies). Tests read it to prove which
 * process wrote what, e.g. that a deposed leader wrote nothing.
 */
export const AUDIT_POLICY = {
  apiVersion: "audit.k8s.io/v1",
  kind: "Policy",
  omitStages: ["RequestReceived"],
  rules: [
    {level: "None", userGroups: ["system:serviceaccounts:kube-system", "system:nodes"]},
    {level: "None", users: ["system:kube-controller-manager", "system:kube-scheduler", "system:apiserver"]},
    {level: "Metadata", verbs: ["create", "update", "patch", "delete", "deletecollection"]},
    {level: "None"}
  ]
};
