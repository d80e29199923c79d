import {spawnSync} from "node:child_process";
import {cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync} from "node:fs";
import {tmpdir} from "node:os";
import {dirname, join, resolve} from "node:path";
import {EXIT_CONFIG, IMAGE_ENTRY, OPERATOR_IMAGE_ENTRY} from "../../contract/index.js";
import {REPO_ROOT} from "../../dev/paths.js";
import {readDockerfile} from "../helpers/dockerfile.js";

/**
 * No Docker engine here, so each image's build stage is replayed: exactly the files its
 * COPY instructions take from the context go into an empty folder (node_modules is linked
 * instead of `npm ci`), its tsc runs there, and its entry points start from the result.
 * A source the program imports but the Dockerfile does not copy fails the compile or the
 * start.
 */
function replayBuild(dockerfile: string): string {
  const dir = mkdtempSync(join(tmpdir(), "paddock-image-"));
  const build = readDockerfile(resolve(REPO_ROOT, dockerfile)).filter((i) => i.stage === "build");
  for (const copy of build.filter((i) => i.keyword === "COPY" && !i.args.includes("--from"))) {
    const parts = copy.args.split(/\s+/);
    const dest = parts.pop()!;
    for (const src of parts) {
      const target = dest.endsWith("/") ? join(dir, dest, src.endsWith("/") ? "" : src.split("/").pop()!) : join(dir, dest);
      mkdirSync(dirname(target), {recursive: true});
      cpSync(resolve(REPO_ROOT, src), target, {recursive: true});
    }
  }
  symlinkSync(resolve(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
  const tsc = spawnSync(process.execPath, [resolve(REPO_ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {cwd: dir, encoding: "utf8"});
  if (tsc.status !== 0) throw new Error(`${dockerfile}: tsc failed in the replayed build:\n${tsc.stdout}${tsc.stderr}`);
  return dir;
}

const run = (dir: string, args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, args, {cwd: dir, encoding: "utf8", env: {PATH: process.env["PATH"] ?? "", HOME: dir, ...env}, timeout: 30_000});

describe("images built from exactly what their Dockerfiles copy", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, {recursive: true, force: true})));

  it("Dockerfile.operator: the operator starts (--help lists its flags)", () => {
    const dir = replayBuild("Dockerfile.operator");
    dirs.push(dir);
    const entry = (JSON.parse(readDockerfile(resolve(REPO_ROOT, "Dockerfile.operator")).find((i) => i.keyword === "ENTRYPOINT")!.args) as string[]).slice(1);
    const help = run(dir, [...entry, "--help"]);
    expect(help.stderr).toBe("");
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--watch-namespaces/);
    const bad = run(dir, [...entry, "--no-such-flag"]);
    expect(bad.status).toBe(EXIT_CONFIG);
    expect(bad.stderr).toMatch(/unknown argument '--no-such-flag'/);
    // The same image runs the routers, from the entry point the operator's router pods name.
    const router = run(dir, [OPERATOR_IMAGE_ENTRY.router]);
    expect(router.status).toBe(EXIT_CONFIG);
    expect(router.stderr).toMatch(/MODEL_NAME is required/);
    expect(run(dir, [OPERATOR_IMAGE_ENTRY.router, "--help"]).stdout).toMatch(/ROUTER_STRATEGY/);
  }, 120_000);

  it("Dockerfile.inference: the server and the model download program start and check their configuration", () => {
    const dir = replayBuild("Dockerfile.inference");
    dirs.push(dir);
    const entry = JSON.parse(readDockerfile(resolve(REPO_ROOT, "Dockerfile.inference")).find((i) => i.keyword === "ENTRYPOINT")!.args) as string[];
    expect(entry).toEqual(["node", IMAGE_ENTRY.server]);
    const server = run(dir, [IMAGE_ENTRY.server]);
    expect(server.status).toBe(EXIT_CONFIG);
    expect(server.stderr).toMatch(/MODEL_PATH: is required/);
    const fetch = run(dir, [IMAGE_ENTRY.fetchModel]);
    expect(fetch.status).toBe(EXIT_CONFIG);
    expect(fetch.stderr).toMatch(/MODEL_URL and MODEL_PATH are required/);
  }, 120_000);
});
