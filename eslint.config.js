import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";
import {noImportCycle} from "./dev/lint/import-cycles.js";

/**
 * The house lines (see README "Layout"): the three programs (operator/, inference-image/,
 * router/) meet only at contract/, which imports nothing; nothing outside test/ imports
 * test/. test/unit/import-rules.test.ts checks that these rules fire.
 */
const wings = ["operator", "inference-image", "router"];
const forbid = (dirs, why) => ({
  "no-restricted-imports": ["error", {patterns: [{regex: `(^|/)(${dirs.join("|")})/`, message: why}]}]
});
const wingPatterns = (wing) => [
  {
    regex: `(^|/)(${[...wings.filter((w) => w !== wing), "dev", "test", "bench"].join("|")})/`,
    message: "A program imports only its own modules and contract/: shared names belong in contract/, local tooling in dev/."
  }
];
const wingRules = wings.map((wing) => ({
  files: [`${wing}/**/*.ts`],
  rules: {"no-restricted-imports": ["error", {patterns: wingPatterns(wing)}]}
}));

/**
 * The inference server's rooms, bottom to top (README "Layout"): core/ (the types every
 * layer shares: the internal request, results, records, errors, observer hooks) imports
 * nothing of the server; openai/ (parsing and response shapes) only core/; cache/ only
 * core/; engine/ (node-llama-cpp) core/ and openai/; http/ everything but engine/ and
 * model/ (it knows the engine through core/'s Engine type); model/ (the download program)
 * only cache/'s file digest. main.ts, config.ts and metrics.ts wire the rooms together.
 */
const ROOT_MODULES = "(main|config|metrics)\\.js$";
const server = "inference-image/src";
const room = (name, forbidden, extra = []) => ({
  files: [`${server}/${name}/**/*.ts`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: [
          ...wingPatterns("inference-image"),
          ...extra,
          {regex: `^\\.\\./(${forbidden.join("|")})/`, message: `${name}/ may not import these rooms of the server (see eslint.config.js and README "Layout").`},
          {regex: `^\\.\\./${ROOT_MODULES}`, message: `${name}/ may not import the server's wiring (main, config, metrics): take what it needs as a parameter.`}
        ]
      }
    ]
  }
});
const roomRules = [
  room("core", ["openai", "engine", "http", "cache", "model"], [{regex: "^\\.\\./\\.\\./", message: "core/ imports nothing outside itself."}]),
  room("openai", ["engine", "http", "cache", "model"]),
  room("cache", ["openai", "engine", "http", "model"]),
  room("engine", ["http", "cache", "model"]),
  room("model", ["core", "openai", "engine", "http"]),
  // http/ may read the metrics it reports to, but not the engine or the entry point.
  {
    files: [`${server}/http/**/*.ts`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...wingPatterns("inference-image"),
            {regex: "^\\.\\./(engine|model)/", message: "http/ knows the engine only through core/'s Engine type."},
            {regex: "^\\.\\./(main|config)\\.js$", message: "http/ may not import the server's wiring (main, config)."}
          ]
        }
      ]
    }
  }
];

/** No import circle in any program (dev/lint/import-cycles.js): each can be read bottom-up. */
const noCycles = {
  files: ["operator/**/*.ts", "inference-image/**/*.ts", "router/**/*.ts", "contract/**/*.ts"],
  plugins: {paddock: {rules: {"no-import-cycle": noImportCycle}}},
  rules: {"paddock/no-import-cycle": "error"}
};

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
  ...roomRules,
  noCycles,
  {
    files: ["contract/**/*.ts"],
    rules: {"no-restricted-imports": ["error", {patterns: [{regex: ".", message: "contract/ imports nothing: every program imports it."}]}]}
  },
  {
    files: ["dev/**/*.ts", "bench/**/*.ts"],
    rules: forbid(["test"], "Nothing outside test/ imports test/: move shared tooling to dev/.")
  }
);
