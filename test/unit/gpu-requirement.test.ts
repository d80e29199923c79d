import {backendProblem, offloadProblem} from "../../inference-image/src/engine/gpu-requirement.js";

describe("GPU_REQUIRED", () => {
  it("lets a server without the requirement run anywhere", () => {
    expect(backendProblem({required: false, mode: "auto", backend: false, supported: [false]})).toBeUndefined();
    expect(offloadProblem({required: false, backend: false, offloaded: 0, requested: "auto", vramFree: 0, vramTotal: 0})).toBeUndefined();
  });

  it("refuses the CPU, saying whether the machine has usable GPU backends at all", () => {
    expect(backendProblem({required: true, mode: "auto", backend: "cuda", supported: ["cuda", false]})).toBeUndefined();
    expect(backendProblem({required: true, mode: "auto", backend: false, supported: [false]})).toMatch(/no usable GPU on this machine.*spec\.resources\.gpus: 0/);
    expect(backendProblem({required: true, mode: "cuda", backend: false, supported: ["cuda", "vulkan", false]})).toMatch(/GPU=cuda; node-llama-cpp: backends for cuda, vulkan, none of which loaded/);
  });

  it("refuses a GPU that holds no layer unless no layer was asked for", () => {
    expect(offloadProblem({required: true, backend: "cuda", offloaded: 0, requested: "auto", vramFree: 512 * 2 ** 20, vramTotal: 80 * 2 ** 30})).toMatch(/no layer of the model fits the GPU \(cuda, 512 MiB free of 81920 MiB\)/);
    expect(offloadProblem({required: true, backend: "cuda", offloaded: 0, requested: 0, vramFree: 0, vramTotal: 0})).toBeUndefined();
    expect(offloadProblem({required: true, backend: "cuda", offloaded: 33, requested: "max", vramFree: 0, vramTotal: 0})).toBeUndefined();
  });
});
