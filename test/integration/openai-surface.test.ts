import {Ajv} from "ajv";
import OpenAI from "openai";
import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {ServerProcess} from "../../dev/processes/server.js";

/**
 * The OpenAI features applications rely on beyond plain chat, on the real tiny model
 * through the official `openai` client. The tiny model knows no JSON: what makes its
 * output parse and validate is the grammar, which is the point.
 */
describe("OpenAI surface: structured output", () => {
  let server: ServerProcess;
  let client: OpenAI;
  const ajv = new Ajv({strict: true, allErrors: true});

  beforeAll(async () => {
    server = await ServerProcess.start({PARALLEL_SLOTS: "2"});
    client = new OpenAI({baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0});
  });
  afterAll(() => server.stop());

  const messages = [{role: "user" as const, content: "Describe a cat in JSON."}];

  it("json_object: the answer parses as a JSON object, streamed or not, even when max_tokens cuts it", async () => {
    // The tiny model writes stories into JSON strings and never closes its object on its
    // own: max_tokens ends it, and the server closes what is open (finish_reason "length").
    const res = await client.chat.completions.create({model: TINY_MODEL_NAME, messages, response_format: {type: "json_object"}, max_tokens: 120, temperature: 0});
    expect(res.choices[0]!.finish_reason).toBe("length");
    const value: unknown = JSON.parse(res.choices[0]!.message.content!);
    expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);

    const stream = await client.chat.completions.create({model: TINY_MODEL_NAME, messages, response_format: {type: "json_object"}, max_tokens: 77, temperature: 0.8, seed: 3, stream: true});
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(() => JSON.parse(text) as unknown).not.toThrow();
  });

  it("json_schema (strict): the answer validates against the schema, checked by ajv", async () => {
    const schema = {
      type: "object",
      properties: {
        name: {type: "string", maxLength: 12},
        age: {type: "integer"},
        mood: {enum: ["happy", "sad", "sleepy"]},
        friends: {type: "array", items: {type: "string", maxLength: 8}, maxItems: 2},
        indoor: {type: "boolean"},
        owner: {anyOf: [{type: "null"}, {type: "object", properties: {name: {type: "string", maxLength: 10}}, required: ["name"], additionalProperties: false}]}
      },
      required: ["name", "age", "mood", "friends", "indoor", "owner"],
      additionalProperties: false
    };
    const validate = ajv.compile(schema);
    for (const [temperature, seed] of [[0, 1], [1, 7], [1, 8]] as const) {
      const res = await client.chat.completions.create({
        model: TINY_MODEL_NAME,
        messages,
        response_format: {type: "json_schema", json_schema: {name: "cat", strict: true, schema}},
        max_tokens: 400,
        temperature,
        seed
      });
      const value: unknown = JSON.parse(res.choices[0]!.message.content!);
      expect(validate.errors ?? []).toEqual([]);
      expect(validate(value)).toBe(true);
    }
  });

  it("refuses a schema keyword it cannot enforce when strict, naming it; not strict, the shape still holds", async () => {
    const schema = {type: "object", properties: {n: {type: "integer", minimum: 0}}, required: ["n"], additionalProperties: false};
    const strict = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: TINY_MODEL_NAME, messages, response_format: {type: "json_schema", json_schema: {name: "n", strict: true, schema}}})
    });
    expect(strict.status).toBe(400);
    expect(await strict.json()).toMatchObject({error: {type: "invalid_request_error", code: "invalid_json_schema", param: "response_format.json_schema.schema.properties.n.minimum"}});

    const loose = await client.chat.completions.create({model: TINY_MODEL_NAME, messages, response_format: {type: "json_schema", json_schema: {name: "n", strict: false, schema}}, max_tokens: 100, temperature: 0});
    const value = JSON.parse(loose.choices[0]!.message.content!) as {n: unknown};
    expect(Number.isInteger(value.n)).toBe(true);
  });

  it("keeps formats apart in the response cache: the same prompt as text and as JSON are different entries", async () => {
    const ask = (response_format?: {type: "json_object"}) =>
      fetch(`${server.url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: TINY_MODEL_NAME, messages, max_tokens: 60, temperature: 0, ...(response_format ? {response_format} : {})})});
    const text = await ask();
    const json = await ask({type: "json_object"});
    const jsonAgain = await ask({type: "json_object"});
    const body = async (r: Response) => ((await r.json()) as {choices: Array<{message: {content: string}}>}).choices[0]!.message.content;
    const [t, j, j2] = [await body(text), await body(json), await body(jsonAgain)];
    expect(j).not.toBe(t);
    expect(j2).toBe(j);
    expect(jsonAgain.headers.get("x-cache")).toBe(json.headers.get("x-cache") === "BYPASS" ? "BYPASS" : "HIT");
  });
});
