import {existsSync, readFileSync} from "node:fs";
import {dirname, relative, resolve} from "node:path";

/**
 * ESLint rule `paddock/no-import-cycle`: a module may not reach itself through its relative
 * imports, `import type` included. (eslint-plugin-import-x's no-cycle skips type-only
 * imports, and the inference server's old circle was made of exactly those: each module
 * needed "a type that happens to live there".) Other modules are read from disk once per
 * lint run; the linted file's own imports come from its AST, so unsaved text is checked too.
 */

/** Relative specifiers of a TypeScript source: imports, `export ... from` and `import()`. */
const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^"';]*?from\s*["'](\.[^"']+)["']|(?:^|[\s;])import\s*["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;

/** A `.js` specifier names the `.ts` file beside it (NodeNext resolution). */
function resolveSpecifier(from, specifier) {
  const target = resolve(dirname(from), specifier);
  for (const candidate of [target.replace(/\.js$/, ".ts"), target, `${target}.ts`, resolve(target, "index.ts")]) {
    if (candidate.endsWith(".ts") && existsSync(candidate)) return candidate;
  }
  return undefined;
}

const graph = new Map();

function importsOnDisk(file) {
  let edges = graph.get(file);
  if (!edges) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      // deleted since: no edges
    }
    edges = [...text.matchAll(SPECIFIER)].map((m) => resolveSpecifier(file, m[1] ?? m[2] ?? m[3])).filter(Boolean);
    graph.set(file, edges);
  }
  return edges;
}

/** A path from `start` back to `target` through disk imports, or undefined. */
function pathBack(start, target) {
  const seen = new Set([start]);
  const stack = [[start, [start]]];
  while (stack.length > 0) {
    const [file, path] = stack.pop();
    for (const next of importsOnDisk(file)) {
      if (next === target) return path;
      if (!seen.has(next)) {
        seen.add(next);
        stack.push([next, [...path, next]]);
      }
    }
  }
  return undefined;
}

export const noImportCycle = {
  meta: {type: "problem", docs: {description: "forbid import cycles, type-only imports included"}, schema: [], messages: {cycle: "Import cycle: {{path}}. Move what both need into a module below them (the server's core/, say)."}},
  create(context) {
    const file = context.filename;
    const check = (node, specifier) => {
      if (typeof specifier !== "string" || !specifier.startsWith(".")) return;
      const target = resolveSpecifier(file, specifier);
      if (!target || target === file) return;
      const path = pathBack(target, file);
      if (path) context.report({node, messageId: "cycle", data: {path: [file, ...path, file].map((p) => relative(context.cwd, p)).join(" -> ")}});
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === "Literal" && check(node, node.source.value)
    };
  }
};
