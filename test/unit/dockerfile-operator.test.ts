import {resolve} from "node:path";
import {readDockerfile} from "../helpers/dockerfile.js";
import {REPO_ROOT} from "../../dev/paths.js";

/**
 * Read statically here (no root needed); test/e2e/real-node.test.ts builds the image with
 * buildah and runs it on a real node.
 */
describe("Dockerfile.operator", () => {
  const instructions = readDockerfile(resolve(REPO_ROOT, "Dockerfile.operator"));
  const final = instructions.filter((i) => i.stage === "runtime");
  const build = instructions.filter((i) => i.stage === "build");

  it("is multi-stage and ships production dependencies only, without llama.cpp", () => {
    expect(instructions.filter((i) => i.keyword === "FROM").length).toBeGreaterThanOrEqual(2);
    const runs = build.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(runs).toMatch(/npm prune --omit=dev/);
    expect(runs).toMatch(/npm uninstall --omit=dev [^\n]*node-llama-cpp/);
    expect(final.some((i) => i.keyword === "RUN" && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it("runs as a non-root numeric user", () => {
    const user = final.filter((i) => i.keyword === "USER").at(-1)!.args.split(":")[0]!;
    expect(Number(user)).toBeGreaterThan(0);
  });
});
