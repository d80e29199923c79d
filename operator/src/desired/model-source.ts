import {posix} from "node:path";
import type {LlmService} from "../api/llmservice.js";

/** Where the model file comes from and how the pod gets it. Pure: derived from spec.model.uri. */
export type ModelSource =
  | {kind: "https"; url: string; fileName: string}
  /** (https:// and hf:// sources: downloaded by the fetch-model init container.) */
  | {kind: "pvc"; claim: string; subPath: string}
  | {kind: "file"; path: string; hostPath: boolean};

/** Mount point of the model volume in the pod. */
export const MODEL_DIR = "/models";

export function modelSource(svc: LlmService): ModelSource {
  const uri = svc.spec.model.uri;
  if (uri.startsWith("https://") || uri.startsWith("hf://")) {
    // The download program resolves hf:// itself (HF_ENDPOINT); the file keeps its name.
    const path = uri.startsWith("hf://") ? uri.slice("hf://".length).replace(/@[^/@]*$/, "") : new URL(uri).pathname;
    const fileName = posix.basename(path) || "model.gguf";
    return {kind: "https", url: uri, fileName: fileName.endsWith(".gguf") ? fileName : `${fileName}.gguf`};
  }
  if (uri.startsWith("pvc://")) {
    const rest = uri.slice("pvc://".length);
    const slash = rest.indexOf("/");
    return {kind: "pvc", claim: rest.slice(0, slash), subPath: rest.slice(slash + 1)};
  }
  return {kind: "file", path: decodeURIComponent(uri.slice("file://".length)), hostPath: svc.spec.model.hostPath};
}

/** MODEL_PATH inside the server container. */
export function modelPathInPod(source: ModelSource): string {
  switch (source.kind) {
    case "https":
      return posix.join(MODEL_DIR, source.fileName);
    case "pvc":
      return posix.join(MODEL_DIR, source.subPath);
    case "file":
      return source.path;
  }
}
