/**
 * Jest runs in ESM mode (node-llama-cpp and @kubernetes/client-node are ESM-only):
 * `npm test` sets NODE_OPTIONS=--experimental-vm-modules. Type checking is left to
 * `npm run lint` (tsc --noEmit); tsconfig's isolatedModules makes ts-jest transpile only.
 * @type {import('jest').Config}
 */
export default {
  preset: "ts-jest/presets/default-esm",
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  moduleNameMapper: {"^(\\.{1,2}/.*)\\.js$": "$1"},
  transform: {"^.+\\.ts$": ["ts-jest", {useESM: true}]},
  testTimeout: 60_000,
  // Tests that need Kubernetes start one cluster on first use (test/helpers/cluster.ts);
  // this stops it at the end of the run.
  globalTeardown: "<rootDir>/test/jest-global-teardown.mjs",
  // Integration tests start real servers, each of which uses a CPU thread for
  // inference; on a 2-core machine, running test files serially keeps timings sane.
  maxWorkers: 1
};
