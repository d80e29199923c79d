import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

/**
 * The house lines (see README "Layout"): the three programs (operator/, inference-image/,
 * router/) meet only at contract/, which imports nothing; nothing outside test/ imports
 * test/. test/unit/import-rules.test.ts checks that these rules fire.
 */
const wings = ["operator", "inference-image", "router"];
const forbid = (dirs, why) => ({
  "no-restricted-imports": ["error", {patterns: [{regex: `(^|/)(${dirs.join("|")})/`, message: why}]}]
});
const wingRules = wings.map((wing) => ({
  files: [`${wing}/**/*.ts`],
  rules: forbid(
    [...wings.filter((w) => w !== wing), "dev", "test", "bench"],
    "A program imports only its own modules and contract/: shared names belong in contract/, local tooling in dev/."
  )
}));

export default tseslint.config(
  {ignores: ["dist/**", "node_modules/**", "coverage/**"]},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: globals.node},
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", {argsIgnorePattern: "^_"}],
      "no-console": "off"
    }
  },
  ...wingRules,
  {
    files: ["contract/**/*.ts"],
    rules: {"no-restricted-imports": ["error", {patterns: [{regex: ".", message: "contract/ imports nothing: every program imports it."}]}]}
  },
  {
    files: ["dev/**/*.ts", "bench/**/*.ts"],
    rules: forbid(["test"], "Nothing outside test/ imports test/: move shared tooling to dev/.")
  }
);
