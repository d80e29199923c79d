import {mkdirSync, writeFileSync} from "node:fs";
import {cpus} from "node:os";
import {dirname, resolve} from "node:path";
import {REPO_ROOT} from "../../test/helpers/paths.js";

/** Prints rows as an aligned table. */
export function printTable(title: string, rows: ReadonlyArray<Record<string, string | number>>): void {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const cell = (v: string | number | undefined) => (typeof v === "number" ? String(v) : (v ?? ""));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padStart(widths[i]!)).join("  ");
  console.log(`\n${title}`);
  console.log(line(columns));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(columns.map((c) => cell(r[c]))));
}

/** Writes the results under bench/results/<name>.json with the machine they ran on. */
export function writeResults(name: string, results: unknown): string {
  const path = resolve(REPO_ROOT, "bench/results", `${name}.json`);
  mkdirSync(dirname(path), {recursive: true});
  const machine = {cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, date: new Date().toISOString()};
  writeFileSync(path, JSON.stringify({machine, results}, null, 2) + "\n");
  return path;
}
