import {ESLint} from "eslint";
import {REPO_ROOT} from "../../dev/paths.js";

/**
 * The house lines are an ESLint rule (eslint.config.js); this proves the rule fires where it
 * should and stays quiet where imports are allowed, so it cannot silently stop matching.
 */
const eslint = new ESLint({cwd: REPO_ROOT});

async function restricted(filePath: string, source: string): Promise<boolean> {
  const [result] = await eslint.lintText(`import {x} from "${source}";\nexport const y = x;\n`, {filePath});
  return result!.messages.some((m) => m.ruleId === "no-restricted-imports");
}

describe("import rules", () => {
  it.each([
    ["operator/src/controller/x.ts", "../../../inference-image/src/config.js"],
    ["operator/src/x.ts", "../../router/src/main.js"],
    ["operator/src/x.ts", "../../dev/paths.js"],
    ["inference-image/src/x.ts", "../../operator/src/api/llmservice.js"],
    ["inference-image/src/cache/x.ts", "../../../test/helpers/cluster.js"],
    ["router/src/x.ts", "../../inference-image/src/engine/llama-engine.js"],
    ["contract/x.ts", "./log.js"],
    ["contract/x.ts", "zod"],
    ["dev/stack.ts", "../test/helpers/cluster.js"],
    ["bench/x.ts", "../test/helpers/metrics-text.js"],
    // The inference server's rooms (eslint.config.js): nothing above engine/ imports it.
    ["inference-image/src/http/x.ts", "../engine/llama-engine.js"],
    ["inference-image/src/core/x.ts", "../openai/responses.js"],
    ["inference-image/src/core/x.ts", "../../../contract/index.js"],
    ["inference-image/src/openai/x.ts", "../engine/slot-pool.js"],
    ["inference-image/src/cache/x.ts", "../http/app.js"],
    ["inference-image/src/engine/x.ts", "../config.js"],
    ["inference-image/src/engine/x.ts", "../http/api-keys.js"],
    ["inference-image/src/model/x.ts", "../engine/llama-engine.js"]
  ])("%s may not import %s", async (file, source) => {
    expect(await restricted(file, source)).toBe(true);
  });

  it.each([
    ["operator/src/desired/x.ts", "../../../contract/index.js"],
    ["operator/src/desired/x.ts", "./meta.js"],
    ["inference-image/src/x.ts", "../../contract/log.js"],
    ["router/src/x.ts", "../../contract/index.js"],
    ["dev/stack.ts", "../operator/src/kube/kube-client.js"],
    ["test/unit/x.test.ts", "../../inference-image/src/config.js"],
    ["test/unit/x.test.ts", "../helpers/cluster.js"],
    ["inference-image/src/engine/x.ts", "../openai/stop-detector.js"],
    ["inference-image/src/engine/x.ts", "../core/generation.js"],
    ["inference-image/src/http/x.ts", "../core/generation.js"],
    ["inference-image/src/http/x.ts", "../metrics.js"],
    ["inference-image/src/main.ts", "./engine/llama-engine.js"]
  ])("%s may import %s", async (file, source) => {
    expect(await restricted(file, source)).toBe(false);
  });

  it("an import cycle fails lint, type-only imports included, naming the circle", async () => {
    // core/errors.ts is imported (through json-schema.ts) by openai/chat-request.ts: importing it back closes a circle.
    const lint = async (source: string) => (await eslint.lintText(`${source}\nexport type Y = X;\n`, {filePath: "inference-image/src/core/errors.ts"}))[0]!.messages.filter((m) => m.ruleId === "paddock/no-import-cycle");
    const [cycle] = await lint(`import type {X} from "../openai/chat-request.js";`);
    expect(cycle?.message).toMatch(/^Import cycle: inference-image\/src\/core\/errors\.ts -> inference-image\/src\/openai\/chat-request\.ts -> (.* -> )?inference-image\/src\/core\/errors\.ts\./);
    expect(await lint(`import type {X} from "./request.js";`)).toEqual([]);
  });
});
