// Prints the token count (or, with argv[4] "ids", the token ids) of each JSON-array text in argv[3] for the model at argv[2].
import {getLlama} from "node-llama-cpp";

const llama = await getLlama({gpu: false, build: "never", maxThreads: 1, logLevel: "error"});
const model = await llama.loadModel({modelPath: process.argv[2]});
const texts = JSON.parse(process.argv[3]);
process.stdout.write(JSON.stringify(texts.map((t) => (process.argv[4] === "ids" ? model.tokenize(t) : model.tokenize(t).length))));
await llama.dispose();
