/**
 * What the operator and the download program (`fetch-model`, in the inference image) must
 * agree on about a model download: how a model URI resolves to URLs (hf://, sharded GGUF
 * parts), the progress lines the program logs (the operator reads them through `pods/log`
 * into `status.model`), and the failure reasons its termination message starts with.
 * Pure; imports nothing.
 */

export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

/**
 * Where a model URI is downloaded from. `hf://<org>/<repo>/<path>.gguf[@<revision>]` is the
 * Hugging Face resolve URL `<endpoint>/<org>/<repo>/resolve/<revision>/<path>` (revision
 * defaults to `main`), the way the hub's own clients resolve it, with `HF_ENDPOINT` for mirrors.
 */
export function resolveModelUrl(uri: string, hfEndpoint: string = DEFAULT_HF_ENDPOINT): {url: string; hub: boolean} {
  if (!uri.startsWith("hf://")) return {url: uri, hub: false};
  const rest = uri.slice("hf://".length);
  const at = rest.lastIndexOf("@");
  const [ref, revision] = at > 0 && !rest.slice(at).includes("/") ? [rest.slice(0, at), rest.slice(at + 1)] : [rest, "main"];
  const parts = ref.split("/");
  if (parts.length < 3 || parts.some((p) => p === "" || p === "." || p === "..") || !ref.endsWith(".gguf")) {
    throw new Error(`${uri} is not hf://<org>/<repo>/<path>.gguf[@<revision>]`);
  }
  const [org, repo, ...path] = parts;
  const encode = (s: string) => s.split("/").map(encodeURIComponent).join("/");
  return {url: `${hfEndpoint.replace(/\/$/, "")}/${encode(`${org}/${repo}`)}/resolve/${encodeURIComponent(revision)}/${encode(path.join("/"))}`, hub: true};
}

/**
 * The URIs of a sharded GGUF's parts (`<name>-00001-of-0000N.gguf`, as llama.cpp's
 * gguf-split names them) when `uri` names the first one; undefined for a single file.
 */
export function shardUris(uri: string): string[] | undefined {
  const shard = /-(\d{5})-of-(\d{5})\.gguf(@[^/@]*)?$/;
  const m = shard.exec(uri);
  if (!m || m[1] !== "00001") return undefined;
  const count = Number(m[2]);
  if (count < 2) return undefined;
  return Array.from({length: count}, (_, i) => uri.replace(shard, `-${String(i + 1).padStart(5, "0")}-of-${m[2]}.gguf${m[3] ?? ""}`));
}

/** One line of the download's log (JSON), every few seconds while it runs. */
export interface DownloadProgress {
  readonly msg: "progress" | "verifying";
  /** Bytes on disk so far (of the part being fetched, plus parts already done). */
  readonly bytes: number;
  readonly total: number | null;
  readonly bytes_per_second: number;
  readonly eta_seconds: number | null;
}

/** The last progress line in a log tail, if any. */
export function lastProgress(logTail: string): DownloadProgress | undefined {
  const lines = logTail.trim().split("\n").reverse();
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    try {
      const o = JSON.parse(line) as Partial<DownloadProgress>;
      if ((o.msg === "progress" || o.msg === "verifying") && typeof o.bytes === "number") {
        return {msg: o.msg, bytes: o.bytes, total: typeof o.total === "number" ? o.total : null, bytes_per_second: Number(o.bytes_per_second) || 0, eta_seconds: typeof o.eta_seconds === "number" ? o.eta_seconds : null};
      }
    } catch {
      // not a progress line
    }
  }
  return undefined;
}

/** Why a download failed: its termination message starts with `<reason>: `. */
export const DOWNLOAD_FAILURE_REASONS = ["HttpError", "Unauthorized", "DigestMismatch", "InsufficientStorage", "TooManyRetries", "InvalidSource", "WriteFailed"] as const;
export type DownloadFailureReason = (typeof DOWNLOAD_FAILURE_REASONS)[number];

export const downloadFailureMessage = (reason: DownloadFailureReason, message: string) => `${reason}: ${message}`;

/** Reason and message of a termination message; reason HttpError when none is recognised. */
export function parseDownloadFailure(text: string): {reason: DownloadFailureReason; message: string} {
  const m = new RegExp(`\\b(${DOWNLOAD_FAILURE_REASONS.join("|")}): ([\\s\\S]*)$`).exec(text.trim());
  return m ? {reason: m[1] as DownloadFailureReason, message: m[2]!.trim()} : {reason: "HttpError", message: text.trim()};
}
