// An independent oracle for streamed logprobs: greedy decoding of [BOS, ...ids] through
// node-llama-cpp's public API (evaluateWithMetadata's probabilities: at temperature 0 the
// sampler chain is greedy alone, so they are the softmax of the raw logits), on its own
// prebuilt binary. Prints, per generated token, its text, ln(p) and the `top` likeliest.
//   node raw-logprobs-cli.mjs <model.gguf> <ids as JSON> <tokens> <top>
import {getLlama} from "node-llama-cpp";

const [modelPath, idsJson, count, top] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", maxThreads: 1, logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 512, sequences: 1});
const sequence = context.getSequence();
const input = [model.tokens.bos, ...JSON.parse(idsJson)];
const before = input.slice(-8);
const text = (t, context) => model.detokenize([t], false, context);
const out = [];
for await (const {token, probabilities} of sequence.evaluateWithMetadata(input, {probabilities: true}, {temperature: 0})) {
  const alternatives = [...probabilities].sort((a, b) => b[1] - a[1]).slice(0, Number(top));
  out.push({token: text(token, before), logprob: Math.log(probabilities.get(token)), top: alternatives.map(([t, p]) => ({token: text(t, before), logprob: Math.log(p)}))});
  before.push(token);
  before.splice(0, before.length - 8);
  if (out.length >= Number(count)) break;
}
process.stdout.write(JSON.stringify(out));
await llama.dispose();
