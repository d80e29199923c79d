/**
 * Where a model URI is downloaded from. Pure.
 *
 * `hf://<org>/<repo>/<path>.gguf[@<revision>]` is the Hugging Face resolve URL
 * `<endpoint>/<org>/<repo>/resolve/<revision>/<path>` (revision defaults to `main`), the
 * way the hub's own clients resolve it, with `HF_ENDPOINT` for mirrors.
 */
export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

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

/** Back-off before reconnect `attempt` (1-based): 1 s doubling, at most 30 s. */
export const backoffMs = (attempt: number) => Math.min(30_000, 1000 * 2 ** (attempt - 1));
