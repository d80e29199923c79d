import type {LlmService} from "../api/llmservice.js";

/** What the operator's flags decide for every LlmService's objects (the inference pods and the download Job). */
export interface DeploymentDefaults {
  /** Inference image when spec.image is unset (the CUDA image). */
  readonly image: string;
  /** Inference image when spec.image is unset and the service has no GPUs (the CPU image: no CUDA libraries). Defaults to `image`. */
  readonly cpuImage?: string;
  readonly imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** The Hugging Face hub or a mirror for hf:// models (--hf-endpoint). */
  readonly hfEndpoint?: string;
}

/** The image a service's pods (and its download container) run: its own, else the CPU or the GPU default. */
export function inferenceImage(svc: LlmService, defaults: DeploymentDefaults): string {
  return svc.spec.image ?? (svc.spec.resources.gpus === 0 && defaults.cpuImage ? defaults.cpuImage : defaults.image);
}
