/** What the operator's flags decide for every LlmService's objects (the inference pods and the download Job). */
export interface DeploymentDefaults {
  /** Inference image when spec.image is unset. */
  readonly image: string;
  readonly imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** The Hugging Face hub or a mirror for hf:// models (--hf-endpoint). */
  readonly hfEndpoint?: string;
}
