// Lists the longest functions (and the longest files) under a folder: `node dev/lint/longest-functions.mjs inference-image/src [N]`.
// A reader's check for the house's "no function a reader must scroll" (about 80 lines), not a lint rule.
import {readdirSync, readFileSync, statSync} from "node:fs";
import {join, relative} from "node:path";
import ts from "typescript";

const [dir = "inference-image/src", count = "5"] = process.argv.slice(2);
const files = (d) => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? files(join(d, f)) : f.endsWith(".ts") ? [join(d, f)] : []));
const functions = [];
const sizes = [];
for (const file of files(dir)) {
  const text = readFileSync(file, "utf8");
  sizes.push({file: relative(".", file), lines: text.split("\n").length - (text.endsWith("\n") ? 1 : 0)});
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const line = (pos) => source.getLineAndCharacterOfPosition(pos).line;
  const visit = (node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const name = node.name?.getText(source) ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText(source) : "(anonymous)");
      functions.push({where: `${relative(".", file)}:${line(node.getStart(source)) + 1}`, name, lines: line(node.end) - line(node.getStart(source)) + 1});
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
const top = (list) => list.sort((a, b) => b.lines - a.lines).slice(0, Number(count));
console.log("longest functions:");
for (const f of top(functions)) console.log(`  ${String(f.lines).padStart(4)}  ${f.name}  ${f.where}`);
console.log("longest files:");
for (const f of top(sizes)) console.log(`  ${String(f.lines).padStart(4)}  ${f.file}`);
