import {createHash} from "node:crypto";
import {createReadStream} from "node:fs";

/**
 * sha256 of a file, streamed in 4 MiB reads. For a multi-GB model this takes a while, so
 * the server computes it in the background (or takes MODEL_SHA256 from the operator) and
 * bypasses the cache until it is known.
 */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, {highWaterMark: 4 * 1024 * 1024})) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
