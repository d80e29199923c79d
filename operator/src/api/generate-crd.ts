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

/**
 * The chart's copy: the same CRD in templates/ (so `helm upgrade` updates it, which a
 * chart's crds/ folder never does), kept on uninstall so LlmServices are never deleted.
 */
export function renderChartCrd(): string {
  const crd = llmServiceCrd() as {metadata: Record<string, unknown>};
  crd.metadata["annotations"] = {"helm.sh/resource-policy": "keep"};
  return `${CRD_HEADER}{{- if .Values.crds.install }}\n${stringify(crd, {lineWidth: 0})}{{- end }}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? ".");
  writeFileSync(resolve(root, "crds/llmservices.yaml"), renderCrd());
  writeFileSync(resolve(root, "charts/paddock/templates/crd.yaml"), renderChartCrd());
  console.log(`wrote crds/llmservices.yaml and charts/paddock/templates/crd.yaml under ${root}`);
}
