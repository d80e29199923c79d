import {existsSync} from "node:fs";
import {dirname, resolve} from "node:path";
import {fileURLToPath} from "node:url";

/** The checkout's root: the nearest folder up with package.json (works from the sources and from dist/). */
export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  let dir = from;
  while (!existsSync(resolve(dir, "package.json")) || dir.endsWith("/dist")) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
  return dir;
}

/** The real tiny llama model every test uses (see ../shared/models/README.md); overridable for other checkouts. */
export const TINY_MODEL = process.env["PADDOCK_TEST_MODEL"] ?? resolve(REPO_ROOT, "../shared/models/stories260K.gguf");
export const TINY_MODEL_NAME = "stories260K";

/** The built programs; `npm test` builds before running jest. */
export const SERVER_ENTRY = resolve(REPO_ROOT, "dist/inference-image/src/main.js");
export const OPERATOR_ENTRY = resolve(REPO_ROOT, "dist/operator/src/main.js");

export function requireBuilt(): void {
  if (!existsSync(SERVER_ENTRY)) throw new Error(`${SERVER_ENTRY} is missing: run 'npm run build' (npm test does it)`);
}
