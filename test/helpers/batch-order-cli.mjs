// Records the sequence ids of every llama.cpp batch node-llama-cpp builds while four sequences
// of one context generate together, started last slot first (the order they queue in), and
// prints them as JSON: [[3, 2, 1, 0], [0, 1, 2, 3], ...]. It only watches the addon's
// initBatch/addToBatch calls (the batch as llama_decode receives it); nothing is replaced.
//   node batch-order-cli.mjs <model.gguf>
import {getLlama, LlamaCompletion} from "node-llama-cpp";

const llama = await getLlama({gpu: false, build: "never", maxThreads: 1, logLevel: "error"});
const model = await llama.loadModel({modelPath: process.argv[2]});
const context = await model.createContext({contextSize: 256, sequences: 4});
const sequences = Array.from({length: 4}, () => context.getSequence());
const addon = context._ctx;
const batches = [];
const initBatch = addon.initBatch.bind(addon);
const addToBatch = addon.addToBatch.bind(addon);
// The addon's methods are read-only on its prototype: shadowed on the instance.
const watch = (name, method) => Object.defineProperty(addon, name, {value: method});
watch("initBatch", (size) => {
  batches.push([]);
  return initBatch(size);
});
watch("addToBatch", (sequenceId, ...rest) => {
  batches.at(-1).push(sequenceId);
  return addToBatch(sequenceId, ...rest);
});
const prompts = ["Once upon a time", "Lily and Ben went to the park", "The sun", "Tom had a big red ball and a little dog"];
await Promise.all(
  [3, 2, 1, 0].map((slot) => {
    const completion = new LlamaCompletion({contextSequence: sequences[slot]});
    return completion.generateCompletion(prompts[slot], {maxTokens: 12, temperature: 0, disableContextShift: true});
  })
);
process.stdout.write(JSON.stringify(batches));
await llama.dispose();
