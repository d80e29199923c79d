import {resolve} from "node:path";
import {readDockerfile} from "../helpers/dockerfile.js";
import {REPO_ROOT} from "../../dev/paths.js";

/**
 * No Docker engine on this machine: the image is checked by reading its Dockerfile here,
 * and by building and starting exactly what it copies in test/integration/images.test.ts.
 */
describe("Dockerfile.operator", () => {
  const instructions = readDockerfile(resolve(REPO_ROOT, "Dockerfile.operator"));
  const final = instructions.filter((i) => i.stage === "runtime");
  const build = instructions.filter((i) => i.stage === "build");

  it("is multi-stage and ships production dependencies only, without llama.cpp", () => {
    expect(instructions.filter((i) => i.keyword === "FROM").length).toBeGreaterThanOrEqual(2);
    const runs = build.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(runs).toMatch(/npm prune --omit=dev/);
    expect(runs).toMatch(/rm -rf node_modules\/node-llama-cpp/);
    expect(final.some((i) => i.keyword === "RUN" && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it("runs as a non-root numeric user", () => {
    const user = final.filter((i) => i.keyword === "USER").at(-1)!.args.split(":")[0]!;
    expect(Number(user)).toBeGreaterThan(0);
  });
});
