import {readFileSync} from "node:fs";

/**
 * The model's weights and transparent huge pages (THP).
 *
 * Decoding reads every weight once per token. Mapped from the file, the weights sit in the page
 * cache's 4 KiB pages, and the walk over them misses the TLB every 4 KiB. Read into the
 * process's memory instead, Paddock's llama.cpp build (patch `...-llama.cpp-huge-pages.patch`)
 * asks for 2 MiB pages for them, and for the KV cache and compute buffers. Measured on one core
 * of this VM's EPYC (THP in madvise mode), 110M f16: 80 tokens/s mapped, 108-110 read into huge
 * pages.
 */
export type MmapMode = "auto" | "on" | "off";

/**
 * node-llama-cpp's `useMmap` for a mode and the backend that loaded. On a CPU, `auto` reads
 * the file into memory. With a GPU the weights that matter live in VRAM: node-llama-cpp
 * decides (it turns mmap off itself where that lets more layers fit).
 */
export function useMmapFor(mode: MmapMode, gpu: false | string): boolean | "auto" {
  if (mode !== "auto") return mode === "on";
  return gpu === false ? false : "auto";
}

/** The THP mode in `/sys/kernel/mm/transparent_hugepage/enabled` ("always [madvise] never"). */
export function thpMode(enabled: string): "always" | "madvise" | "never" | undefined {
  const chosen = /\[(\w+)\]/.exec(enabled)?.[1];
  return chosen === "always" || chosen === "madvise" || chosen === "never" ? chosen : undefined;
}

/** Bytes of anonymous memory in huge pages, from `/proc/<pid>/smaps_rollup`. */
export function anonHugeBytes(smapsRollup: string): number | undefined {
  const kb = /^AnonHugePages:\s+(\d+) kB$/m.exec(smapsRollup)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

export interface HugePagesState {
  readonly mode: "always" | "madvise" | "never" | undefined;
  readonly anonHugeBytes: number | undefined;
}

/** This process's THP state; fields are undefined where the kernel does not say (not Linux). */
export function readHugePages(read: (path: string) => string = (path) => readFileSync(path, "utf8")): HugePagesState {
  const tryRead = (path: string) => {
    try {
      return read(path);
    } catch {
      return undefined;
    }
  };
  const enabled = tryRead("/sys/kernel/mm/transparent_hugepage/enabled");
  const rollup = tryRead("/proc/self/smaps_rollup");
  return {mode: enabled === undefined ? undefined : thpMode(enabled), anonHugeBytes: rollup === undefined ? undefined : anonHugeBytes(rollup)};
}

/**
 * The start-up line about where the weights are, and whether it is worth a warning: a CPU
 * server whose node has THP off decodes large models markedly slower (see above).
 */
export function weightsMessage(input: {mmap: boolean; gpu: false | string; state: HugePagesState}): {level: "info" | "warn"; text: string} {
  const {mmap, gpu, state} = input;
  const where = mmap ? "mapped from the file" : "read into memory";
  const huge = state.anonHugeBytes === undefined ? "" : `, ${Math.round(state.anonHugeBytes / 2 ** 20)} MiB of the process in huge pages`;
  const text = `model weights: ${where}; transparent huge pages: ${state.mode ?? "unknown"}${huge}`;
  if (gpu === false && !mmap && state.mode === "never") {
    return {level: "warn", text: `${text}. This node has THP off (/sys/kernel/mm/transparent_hugepage/enabled): decoding on the CPU is up to 1.4x slower than with "madvise"`};
  }
  return {level: "info", text};
}
