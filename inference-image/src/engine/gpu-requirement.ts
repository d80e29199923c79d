/**
 * Whether a server that must use a GPU (GPU_REQUIRED) may serve: pure, over what
 * node-llama-cpp reports. Returns the message to exit with, or undefined when the GPU is used.
 */
export interface GpuFacts {
  /** GPU_REQUIRED. */
  readonly required: boolean;
  /** The GPU setting (GPU=). */
  readonly mode: string;
  /** The backend in use, or false for the CPU. */
  readonly backend: string | false;
  /** Backends usable on this machine (getLlamaGpuTypes("supported")), `false` for the CPU. */
  readonly supported: ReadonlyArray<string | false>;
}

export function backendProblem(f: GpuFacts): string | undefined {
  if (!f.required || f.backend !== false) return undefined;
  const gpus = f.supported.filter((t): t is string => t !== false);
  const found = gpus.length > 0 ? `backends for ${gpus.join(", ")}, none of which loaded` : "no usable GPU on this machine: no driver or device visible";
  return (
    `GPU_REQUIRED: no GPU backend could be loaded (GPU=${f.mode}; node-llama-cpp: ${found}): ` +
    "check that the pod gets the GPU (nvidia-smi in the container, the NVIDIA container runtime, the node's driver), or set spec.resources.gpus: 0 to run on the CPU"
  );
}

/** After loading: layers were asked for (GPU_LAYERS not 0) but none fit the GPU. */
export function offloadProblem(f: {required: boolean; backend: string | false; offloaded: number; requested: number | "auto" | "max"; vramFree: number; vramTotal: number}): string | undefined {
  if (!f.required || f.offloaded > 0 || f.requested === 0) return undefined;
  const mib = (n: number) => Math.round(n / 2 ** 20);
  return (
    `GPU_REQUIRED: no layer of the model fits the GPU (${String(f.backend)}, ${mib(f.vramFree)} MiB free of ${mib(f.vramTotal)} MiB): ` +
    "use a smaller quantization, more GPUs, or a smaller contextSize / parallelSlots"
  );
}
