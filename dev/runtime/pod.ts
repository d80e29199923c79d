import type {ContainerSpec} from "./pod-plan.js";

/** What the local node reads of a pod. */
export interface Pod {
  metadata: {name: string; namespace: string; uid: string; deletionTimestamp?: string; deletionGracePeriodSeconds?: number; annotations?: Record<string, string>};
  spec: {
    containers: Array<ContainerSpec & {startupProbe?: Probe; readinessProbe?: Probe; livenessProbe?: Probe; lifecycle?: {preStop?: {sleep?: {seconds: number}; exec?: {command: string[]}}}}>;
    initContainers?: ContainerSpec[];
    volumes?: Volume[];
    restartPolicy?: "Always" | "OnFailure" | "Never";
    terminationGracePeriodSeconds?: number;
    serviceAccountName?: string;
    automountServiceAccountToken?: boolean;
  };
}

export interface Volume {
  name: string;
  emptyDir?: object;
  hostPath?: {path: string};
  secret?: {secretName: string; items?: Array<{key: string; path: string}>};
  configMap?: {name: string; items?: Array<{key: string; path: string}>};
  persistentVolumeClaim?: {claimName: string; readOnly?: boolean};
  projected?: {sources?: Array<{serviceAccountToken?: object; configMap?: object; downwardAPI?: object}>};
}

export interface Probe {
  httpGet?: {path?: string; port: number | string};
  periodSeconds?: number;
  failureThreshold?: number;
  timeoutSeconds?: number;
}

/** Reads a Secret's or ConfigMap's data (`kind` is `secrets` or `configmaps`); undefined when missing. */
export type ObjectData = (kind: "secrets" | "configmaps", namespace: string, name: string) => Promise<Record<string, string> | undefined>;
