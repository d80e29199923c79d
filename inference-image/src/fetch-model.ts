import {createHash} from "node:crypto";
import {createWriteStream, existsSync, renameSync, rmSync, writeFileSync} from "node:fs";
import {Readable} from "node:stream";
import {pipeline} from "node:stream/promises";
import {fileURLToPath} from "node:url";
import {EXIT_CONFIG, FETCH_ENV} from "../../contract/index.js";
import {fileSha256} from "./cache/model-digest.js";

/** A failed download; the message is what `kubectl describe` shows as ModelDownloadFailed. */
export class ModelDownloadError extends Error {
  override name = "ModelDownloadError";
}

/**
 * Downloads `url` to `path`, verifying `sha256` when given. Writes to `<path>.part` and
 * renames only after verification, so a half-written or corrupt file is never served.
 * An existing file whose digest matches is kept (a PVC used as a cache).
 */
export async function fetchModel(url: string, path: string, sha256: string | undefined, fetchImpl: typeof fetch = fetch): Promise<"downloaded" | "present"> {
  if (existsSync(path) && (!sha256 || (await fileSha256(path)) === sha256)) return "present";
  const partial = `${path}.part`;
  try {
    const res = await fetchImpl(url, {redirect: "follow"});
    if (!res.ok || !res.body) throw new ModelDownloadError(`GET ${url}: HTTP ${res.status}`);
    const hash = createHash("sha256");
    const body = Readable.fromWeb(res.body as never);
    body.on("data", (chunk: Buffer) => hash.update(chunk));
    await pipeline(body, createWriteStream(partial));
    const digest = hash.digest("hex");
    if (sha256 && digest !== sha256) throw new ModelDownloadError(`sha256 mismatch for ${url}: expected ${sha256}, got ${digest}`);
    renameSync(partial, path);
    return "downloaded";
  } catch (error) {
    rmSync(partial, {force: true});
    if (error instanceof ModelDownloadError) throw error;
    throw new ModelDownloadError(`downloading ${url} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const url = process.env[FETCH_ENV.url];
  const path = process.env[FETCH_ENV.path];
  if (!url || !path) {
    process.stderr.write(`fetch-model: ${FETCH_ENV.url} and ${FETCH_ENV.path} are required\n`);
    process.exit(EXIT_CONFIG);
  }
  fetchModel(url, path, process.env[FETCH_ENV.sha256]).then(
    (outcome) => process.stdout.write(JSON.stringify({msg: `model ${outcome}`, url, path}) + "\n"),
    (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      process.stderr.write(`fetch-model: ${message}\n`);
      // Kubernetes shows this file's content as the container's termination message.
      try {
        writeFileSync("/dev/termination-log", message);
      } catch {
        // not in a pod
      }
      process.exit(1);
    }
  );
}
