#!/usr/bin/env node
// Builds node-llama-cpp's bundled llama.cpp for the CPU with the options in
// ../llama-cpu-build.json, at install time (npm ci's postinstall, .ci/setup, the inference
// image's build stage), never at model load. The build is cached outside the clone, keyed by
// node-llama-cpp's version, the options, the compiler and Node's ABI: a warm install copies
// it back instead of compiling (about 12 minutes on 2 cores). Without a compiler or CMake it
// says so loudly and leaves the prebuilt binaries, which the server then uses (and logs).
// First it applies Paddock's patches for this node-llama-cpp version (../patches, see their
// README), idempotently: their JavaScript half works with any binary, their C++ half is
// compiled in, and the text of those with a C++ half is part of the cache key. Patches to the
// bundled llama.cpp itself (node-llama-cpp-<version>-llama.cpp-*.patch) go into its tree
// between cloning it from the package's git bundle and compiling it, and key the cache too.
//   node inference-image/scripts/build-llama.mjs [--force]
import {spawnSync} from "node:child_process";
import {createHash} from "node:crypto";
import {cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync} from "node:fs";
import {homedir} from "node:os";
import {dirname, join, resolve} from "node:path";
import {fileURLToPath} from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const patchDir = join(here, "../patches");
const root = resolve(here, "../..");
const {cmakeOptions} = JSON.parse(readFileSync(join(here, "../llama-cpu-build.json"), "utf8"));
const log = (message) => process.stderr.write(`[llama build] ${message}\n`);
const loud = (message) => process.stderr.write(`\n[llama build] ${"!".repeat(70)}\n[llama build] ${message}\n[llama build] ${"!".repeat(70)}\n\n`);

const packageDir = join(root, "node_modules/node-llama-cpp");
if (!existsSync(packageDir)) {
  log("node-llama-cpp is not installed here: nothing to build");
  process.exit(0);
}
const version = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")).version;
// This version's patches, in name order: those to the bundled llama.cpp go into its tree at
// compile time, the others into the package now.
const allPatches = (existsSync(patchDir) ? readdirSync(patchDir).filter((f) => f.startsWith(`node-llama-cpp-${version}-`) && f.endsWith(".patch")).sort() : []).map((name) => ({name, text: readFileSync(join(patchDir, name), "utf8")}));
const llamaCppPatches = allPatches.filter(({name}) => name.startsWith(`node-llama-cpp-${version}-llama.cpp-`));
const patches = applyPatches();
const tool = (command, args) => spawnSync(command, args, {encoding: "utf8"});
const compiler = tool("c++", ["--version"]);
const cmake = tool("cmake", ["--version"]);
const git = tool("git", ["--version"]);
if (compiler.status !== 0 || cmake.status !== 0 || git.status !== 0) {
  loud(
    `no ${[compiler.status !== 0 && "C++ compiler", cmake.status !== 0 && "cmake", git.status !== 0 && "git"].filter(Boolean).join(", ")} here: ` +
      "the server will run node-llama-cpp's PREBUILT CPU binaries, whose prompts are about 2x slower. " +
      "Install a C++ compiler, cmake and git (apt-get install g++ cmake git) and run `node inference-image/scripts/build-llama.mjs`."
  );
  process.exit(0);
}
const key = createHash("sha256")
  .update(JSON.stringify({version, cmakeOptions, patches, compiler: compiler.stdout.split("\n")[0], abi: process.versions.modules, arch: process.arch}))
  .digest("hex")
  .slice(0, 12);
const cacheDir = join(process.env["PADDOCK_CACHE_DIR"] ?? join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "paddock"), `llama-${version}-${key}`);
const localBuilds = join(packageDir, "llama/localBuilds");
const force = process.argv.includes("--force");

if (!force && existsSync(join(cacheDir, ".complete"))) {
  for (const folder of readdirSync(cacheDir).filter((f) => !f.startsWith("."))) {
    rmSync(join(localBuilds, folder), {recursive: true, force: true});
    cpSync(join(cacheDir, folder), join(localBuilds, folder), {recursive: true});
  }
  log(`restored from ${cacheDir}`);
  process.exit(0);
}

log(`compiling node-llama-cpp ${version}'s llama.cpp for the CPU (${Object.entries(cmakeOptions).map(([k, v]) => `${k}=${v}`).join(" ")}): about 12 minutes on 2 cores`);
const started = Date.now();
const env = {...process.env, ...Object.fromEntries(Object.entries(cmakeOptions).map(([k, v]) => [`NODE_LLAMA_CPP_CMAKE_OPTION_${k}`, v]))};
const cli = (...args) => spawnSync(process.execPath, [join(packageDir, "dist/cli/cli.js"), "source", ...args, "--noUsageExample"], {cwd: root, env, stdio: ["ignore", "inherit", "inherit"]});
// Clone the bundled llama.cpp (no network), patch it, then compile it.
const cloned = cli("download", "--gpu", "false", "--skipBuild");
if (cloned.status === 0) applyLlamaCppPatches();
const built = cloned.status === 0 ? cli("build", "--gpu", "false") : cloned;
if (built.status !== 0) {
  loud("compiling llama.cpp failed (see above): the server will run node-llama-cpp's PREBUILT CPU binaries, whose prompts are about 2x slower");
  process.exit(0);
}
// The folder this build wrote (its name hashes the options), as node-llama-cpp records it,
// cached for the next install.
const {folderName} = JSON.parse(readFileSync(join(packageDir, "llama/lastBuild.json"), "utf8"));
// Only what node-llama-cpp loads: the binaries and the mark of a finished build (the CMake
// tree beside them is 80 MB of objects).
rmSync(cacheDir, {recursive: true, force: true});
for (const part of ["Release", "buildDone.status"]) cpSync(join(localBuilds, folderName, part), join(cacheDir, folderName, part), {recursive: true});
spawnSync("touch", [join(cacheDir, ".complete")]);
// The CMake tree is not needed to load the build: leave node_modules (and images) without it.
for (const entry of readdirSync(join(localBuilds, folderName))) if (!["Release", "buildDone.status"].includes(entry)) rmSync(join(localBuilds, folderName, entry), {recursive: true, force: true});
log(`built in ${Math.round((Date.now() - started) / 1000)} s, cached in ${cacheDir}`);

/**
 * Applies ../patches/node-llama-cpp-<version>-*.patch (but the llama.cpp ones, applied at
 * compile time) to the installed package in name order,
 * and records in the package what it applied (.paddock-patches.json, the patches' text): a
 * second run with the same patches changes nothing, one with changed patches first takes the
 * recorded ones back, last first. (Asking each patch whether it is applied, by its own reverse,
 * fails once a later patch has changed lines it added.) Returns the hash of those that change
 * compiled sources. A patch that does not apply fails the install: the package is not the one
 * the patch was written for.
 */
function applyPatches() {
  if (allPatches.length === 0) loud(`no patches for node-llama-cpp ${version} in ${patchDir}: streamed logprobs fall back to scoring the reply once it ends`);
  const wanted = allPatches.filter((patch) => !llamaCppPatches.includes(patch));
  const marker = join(packageDir, ".paddock-patches.json");
  const recorded = existsSync(marker) ? JSON.parse(readFileSync(marker, "utf8")) : [];
  // git apply outside any repository: the clone around node_modules must not claim the paths.
  const gitApply = (args, text) => spawnSync("git", ["apply", "-p1", ...args], {cwd: packageDir, input: text, encoding: "utf8", env: {...process.env, GIT_CEILING_DIRECTORIES: dirname(packageDir)}});
  const fail = (message) => {
    loud(message);
    process.exit(1);
  };
  if (JSON.stringify(recorded) !== JSON.stringify(wanted)) {
    const applied = [...recorded];
    while (applied.length > 0) {
      const {name, text} = applied.at(-1);
      const reversed = gitApply(["--reverse"], text);
      if (reversed.status !== 0) fail(`could not take back ${name}, applied by an earlier install: ${reversed.error ?? reversed.stderr}; reinstall node-llama-cpp (npm ci)`);
      applied.pop();
      writeFileSync(marker, JSON.stringify(applied));
      log(`took back ${name}`);
    }
    for (const patch of wanted) {
      const result = gitApply([], patch.text);
      if (result.status !== 0) fail(`patch ${patch.name} does not apply to node-llama-cpp ${version}: ${result.error ?? result.stderr}`);
      applied.push(patch);
      writeFileSync(marker, JSON.stringify(applied));
      log(`applied ${patch.name}`);
    }
  }
  const hash = createHash("sha256");
  // Only what is compiled keys the build: a patch to node-llama-cpp's JavaScript alone
  // (dist/) changes no binary, so it must not cost a ten-minute compile.
  for (const {name, text} of wanted) if (touchesNative(text)) hash.update(name).update(text);
  for (const {name, text} of llamaCppPatches) hash.update(name).update(text);
  return hash.digest("hex");
}

/**
 * Applies ../patches/node-llama-cpp-<version>-llama.cpp-*.patch (paths relative to llama.cpp's
 * root) to the llama.cpp tree that `source download --skipBuild` has just cloned from the
 * package's bundle: that tree exists only while compiling, so they are applied then, not at
 * install. One that does not apply fails the install, as a package patch does.
 */
function applyLlamaCppPatches() {
  const tree = join(packageDir, "llama/llama.cpp");
  for (const {name, text} of llamaCppPatches) {
    const result = spawnSync("git", ["apply", "-p1"], {cwd: tree, input: text, encoding: "utf8"});
    if (result.status !== 0) {
      loud(`patch ${name} does not apply to node-llama-cpp ${version}'s llama.cpp: ${result.error ?? result.stderr}`);
      process.exit(1);
    }
    log(`applied ${name} to llama.cpp`);
  }
}

/** Whether a patch changes a file the build compiles (anything outside node-llama-cpp's dist/). */
function touchesNative(patch) {
  return patch.split("\n").some((line) => line.startsWith("+++ b/") && !line.startsWith("+++ b/dist/"));
}
