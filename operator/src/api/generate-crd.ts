/**
 * Writes crds/llmservices.yaml from the zod schema (`npm run crds`). A unit test fails
 * when the committed file differs from what this generates.
 */
import {writeFileSync} from "node:fs";
import {resolve} from "node:path";
import {fileURLToPath} from "node:url";
import {stringify} from "yaml";
import {llmServiceCrd} from "./crd.js";

export const CRD_HEADER = "# Generated from operator/src/api/llmservice.ts by `npm run crds`. Do not edit.\n";

export function renderCrd(): string {
  return CRD_HEADER + stringify(llmServiceCrd(), {lineWidth: 0});
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = resolve(process.argv[2] ?? "crds/llmservices.yaml");
  writeFileSync(target, renderCrd());
  console.log(`wrote ${target}`);
}
