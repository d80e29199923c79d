import {existsSync} from "node:fs";
import {dirname, resolve} from "node:path";
import {fileURLToPath} from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The real tiny llama model every test uses (see ../shared/models/README.md); overridable for other checkouts. */
export const TINY_MODEL = process.env["PADDOCK_TEST_MODEL"] ?? resolve(REPO_ROOT, "../shared/models/stories260K.gguf");
export const TINY_MODEL_NAME = "stories260K";

/** The built server entry; `npm test` builds before running jest. */
export const SERVER_ENTRY = resolve(REPO_ROOT, "dist/inference-image/src/main.js");

export function requireBuilt(): void {
  if (!existsSync(SERVER_ENTRY)) throw new Error(`${SERVER_ENTRY} is missing: run 'npm run build' (npm test does it)`);
}
