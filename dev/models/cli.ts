/**
 * `npm run model:synthetic -- --shape <name> --out <file> [--type f32|f16|q8_0] [--seed N] [--context N] [--text] [--vocab N]`
 * (`--text`: byte-fallback tokens never win, so output streams as text)
 *
 * Writes a llama-architecture GGUF with seeded random weights and the tiny test model's
 * tokenizer (see synthetic.ts). Shapes: tiny, 20m, 110m, 1b, 8b.
 */
import {statSync} from "node:fs";
import {parseArgs} from "node:util";
import {TINY_MODEL} from "../paths.js";
import {GGML} from "./gguf.js";
import {SHAPES, writeSyntheticModel} from "./synthetic.js";

const {values} = parseArgs({options: {shape: {type: "string"}, out: {type: "string"}, type: {type: "string"}, seed: {type: "string", default: "1"}, context: {type: "string", default: "2048"}, text: {type: "boolean", default: false}, vocab: {type: "string"}, tokenizer: {type: "string", default: TINY_MODEL}}});
const shape = values.shape ? SHAPES[values.shape] : undefined;
if (!shape || !values.out || (values.type !== undefined && !(values.type in GGML))) {
  process.stderr.write(`usage: model:synthetic -- --shape <${Object.keys(SHAPES).join("|")}> --out <file.gguf> [--type ${Object.keys(GGML).join("|")}] [--seed N] [--context N]\n`);
  process.exit(2);
}
const started = performance.now();
const result = writeSyntheticModel({
  shape,
  tokenizerFrom: values.tokenizer,
  out: values.out,
  ...(values.type ? {type: values.type as keyof typeof GGML} : {}),
  seed: Number(values.seed),
  contextLength: Number(values.context),
  name: `synthetic-${values.shape}`,
  textOnly: values.text,
  ...(values.vocab ? {vocab: Number(values.vocab)} : {})
});
const bytes = statSync(values.out).size;
console.log(JSON.stringify({out: values.out, shape: values.shape, parameters: result.parameters, bytes, seconds: Math.round(performance.now() - started) / 1000}));
