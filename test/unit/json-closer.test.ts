import {JsonCloser} from "../../inference-image/src/openai/json-closer.js";

const close = (text: string, pieces = 1) => {
  const c = new JsonCloser();
  const size = Math.ceil(text.length / pieces);
  for (let i = 0; i < text.length; i += size) c.push(text.slice(i, i + size));
  return text + c.closing();
};

describe("JsonCloser: JSON mode cut by max_tokens still parses", () => {
  it.each([
    ["", "{}"],
    ["{", "{}"],
    ['{"a', '{"a":null}'],
    ['{"a"', '{"a":null}'],
    ['{"a":', '{"a":null}'],
    ['{"a": "hel', '{"a": "hel"}'],
    ['{"a": "x\\', '{"a": "x\\\\"}'],
    ['{"a": 1', '{"a": 1}'],
    ['{"a": -', '{"a": -0}'],
    ['{"a": 1.', '{"a": 1.0}'],
    ['{"a": tr', '{"a": true}'],
    ['{"a": [', '{"a": []}'],
    ['{"a": [1,', '{"a": [1,null]}'],
    ['{"a": {"b": [{"c": "d"', '{"a": {"b": [{"c": "d"}]}}'],
    ['{"a": 1,', '{"a": 1,"":null}'],
    ['{"a": "}{][,:\\"", "b"', '{"a": "}{][,:\\"", "b":null}'],
    ['{"a": "\\u12', '{"a": "\\u1200"}'],
    ['{"a": 1}', '{"a": 1}']
  ])("%j -> %j", (text, expected) => {
    expect(close(text)).toBe(expected);
    expect(close(text, 3)).toBe(expected);
    expect(() => JSON.parse(expected) as unknown).not.toThrow();
  });
});
