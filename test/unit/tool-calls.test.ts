import type {Tools} from "../../inference-image/src/core/request.js";
import {ToolCallStream, toolCallOf, toolCallSchema} from "../../inference-image/src/openai/tool-calls.js";

const f = (name: string) => ({name, description: undefined, parameters: {type: "object", properties: {a: {type: "integer"}}}});
const two: Tools = {functions: [f("one"), f("two")], choice: {kind: "required"}};
const named: Tools = {functions: [f("one"), f("two")], choice: {kind: "named", name: "two"}};

const streamed = (tools: Tools, text: string, size: number) => {
  const s = new ToolCallStream(tools);
  const deltas = [];
  for (let i = 0; i < text.length; i += size) deltas.push(...s.push(text.slice(i, i + size)));
  return deltas;
};

describe("tool calls: one grammar-constrained call", () => {
  it("asks the grammar for the arguments when the function is known, else for a name and its arguments", () => {
    expect(toolCallSchema(named)).toEqual(f("two").parameters);
    expect(toolCallSchema({functions: [f("one")], choice: {kind: "required"}})).toEqual(f("one").parameters);
    expect(toolCallSchema(two)).toEqual({oneOf: [{type: "object", properties: {name: {const: "one"}, arguments: f("one").parameters}}, {type: "object", properties: {name: {const: "two"}, arguments: f("two").parameters}}]});
  });

  it.each([1, 2, 5, 100])("streams the name first, then the arguments, exactly as the whole output reads (pieces of %i)", (size) => {
    const text = ' { "name" : "two", "arguments": { "a": 1, "b": {"c": 2} } } ';
    const deltas = streamed(two, text, size);
    expect(deltas[0]).toEqual({kind: "header", name: "two"});
    const args = deltas.slice(1).map((d) => (d.kind === "arguments" ? d.text : "")).join("");
    expect(args).toBe(toolCallOf(text, two).arguments);
    expect(toolCallOf(text, two)).toEqual({name: "two", arguments: '{ "a": 1, "b": {"c": 2} }'});

    const plain = ' {"a": 7} ';
    const namedDeltas = streamed(named, plain, size);
    expect(namedDeltas[0]).toEqual({kind: "header", name: "two"});
    expect(namedDeltas.slice(1).map((d) => (d.kind === "arguments" ? d.text : "")).join("")).toBe('{"a": 7}');
  });
});
