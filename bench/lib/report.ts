import {existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from "node:fs";
import {cpus} from "node:os";
import {dirname, resolve} from "node:path";
import {REPO_ROOT} from "../../dev/paths.js";
import {thpMode} from "../../inference-image/src/engine/huge-pages.js";

type Row = Record<string, string | number>;

/**
 * Tables printed by this benchmark run, in order; writeResults puts them into
 * bench/RESULTS.md. A benchmark is one process, so a module-level list is its report.
 */
const printed: Array<{title: string; rows: readonly Row[]}> = [];

const cell = (v: string | number | undefined) => (typeof v === "number" ? String(v) : (v ?? ""));

/** Prints rows as an aligned table (and keeps them for bench/RESULTS.md). */
export function printTable(title: string, rows: readonly Row[]): void {
  if (rows.length === 0) return;
  printed.push({title, rows});
  const columns = Object.keys(rows[0]!);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padStart(widths[i]!)).join("  ");
  console.log(`\n${title}`);
  console.log(line(columns));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(columns.map((c) => cell(r[c]))));
}

/** The machine a result comes from, recorded beside it. */
function machine() {
  return {cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, date: new Date().toISOString(), proactiveReclaim: proactiveReclaim(), hugePages: hugePages()};
}

/**
 * The kernel's proactive reclaim (DAMON schemes), recorded beside every result because it
 * moves them: the VM these figures come from runs a `pageout` scheme on physical memory
 * (pages idle for about a minute are dropped, up to 128 MB a second; 91 GB since boot at one
 * look), so a program's files come back into other memory, and speed here varies with where
 * a file's pages lie by up to 35% (bench/lib/peers.ts, `peerBinary`). "off" where none runs.
 */
function proactiveReclaim(): string {
  const root = "/sys/kernel/mm/damon/admin/kdamonds";
  try {
    const actions = readdirSync(root)
      .filter((k) => /^\d+$/.test(k) && readFileSync(`${root}/${k}/state`, "utf8").trim() === "on")
      .flatMap((k) => readdirSync(`${root}/${k}/contexts`).filter((c) => /^\d+$/.test(c)).map((c) => `${root}/${k}/contexts/${c}`))
      .flatMap((ctx) => {
        const ops = readFileSync(`${ctx}/operations`, "utf8").trim();
        return readdirSync(`${ctx}/schemes`).filter((x) => /^\d+$/.test(x)).map((x) => `${readFileSync(`${ctx}/schemes/${x}/action`, "utf8").trim()} (${ops})`);
      });
    return actions.length > 0 ? `DAMON ${actions.join(", ")}` : "off";
  } catch {
    return "off";
  }
}

/**
 * The kernel's transparent huge page mode, recorded beside every result because it moves them:
 * the server reads a CPU model into huge pages where the mode allows (MODEL_MMAP: 110M f16
 * decodes up to 1.37x faster), and llama-server, which maps its models, never gets them.
 */
function hugePages(): string {
  try {
    return thpMode(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8")) ?? "unknown";
  } catch {
    return "unavailable";
  }
}

/**
 * Writes the results under bench/results/<name>.json (git-ignored raw data) and this run's
 * tables into bench/RESULTS.md, replacing the benchmark's previous section there: the
 * committed source of every figure the docs quote.
 */
export function writeResults(name: string, results: unknown): string {
  const path = resolve(REPO_ROOT, "bench/results", `${name}.json`);
  mkdirSync(dirname(path), {recursive: true});
  const m = machine();
  writeFileSync(path, JSON.stringify({machine: m, results}, null, 2) + "\n");
  updateSummary(name, m);
  return path;
}

const SUMMARY = () => resolve(REPO_ROOT, "bench/RESULTS.md");
const HEADER = `# Benchmark results

Written by the benchmark programs (\`npm run bench:*\`, see bench/lib/report.ts): each run
replaces its own section. Raw data goes to bench/results/*.json (not committed). Figures
come from the machine named in each section; compare ratios measured in the same run.
`;

function updateSummary(name: string, m: ReturnType<typeof machine>): void {
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const tables = printed.map(({title, rows}) => {
    const columns = Object.keys(rows[0]!);
    return [`**${title}**`, "", `| ${columns.join(" | ")} |`, `|${columns.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${columns.map((c) => cell(r[c])).join(" | ")} |`)].join("\n");
  });
  const section = [start, `## ${name}`, "", `\`npm run bench:${name}\`, ${m.date.slice(0, 10)}, ${m.cpus} x ${m.cpuModel ?? "CPU"}, Node ${m.node}, proactive reclaim ${m.proactiveReclaim}, transparent huge pages ${m.hugePages}.`, "", ...tables.flatMap((t) => [t, ""]), end].join("\n");
  const file = SUMMARY();
  const text = existsSync(file) ? readFileSync(file, "utf8") : HEADER;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  const next = a >= 0 && b > a ? text.slice(0, a) + section + text.slice(b + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
}
