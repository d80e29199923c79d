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
    ["router/src/x.ts", "../../inference-image/src/engine.js"],
    ["contract/x.ts", "./log.js"],
    ["contract/x.ts", "zod"],
    ["dev/stack.ts", "../test/helpers/cluster.js"],
    ["bench/x.ts", "../test/helpers/metrics-text.js"]
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
    ["test/unit/x.test.ts", "../helpers/cluster.js"]
  ])("%s may import %s", async (file, source) => {
    expect(await restricted(file, source)).toBe(false);
  });
});
