import {Ajv2020} from "ajv/dist/2020.js";
import {zodResponseFormat} from "openai/helpers/zod";
import {z} from "zod";
import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {addFormats} from "../helpers/ajv-formats.js";
import {useCheckedServer} from "../helpers/checked-server.js";


/**
 * OpenAI's strict structured outputs with the keywords its strict mode supports (numeric
 * bounds, multipleOf, pattern, format, array sizes), on the real tiny model. The tiny model
 * knows no JSON, let alone e-mail addresses or IPv6: whatever holds is the grammar's doing.
 * Every answer is validated by ajv with ajv-formats, at temperature 0 and 1; the zod case
 * goes through the SDK's own parse(), which checks the answer with zod.
 */
describe("strict JSON schemas: bounds, patterns and formats enforced by the grammar", () => {
  const api = useCheckedServer({PARALLEL_SLOTS: "2"});
  // multipleOfPrecision: 1.12 is a multiple of 0.01 in the decimal JSON holds, not in binary floating point.
  const ajv = addFormats(new Ajv2020({strict: false, allErrors: true, multipleOfPrecision: 9}));

  const model = TINY_MODEL_NAME;
  const messages = [{role: "user" as const, content: "Describe a person."}];
  const strictObject = (properties: Record<string, unknown>) => ({type: "object", properties, required: Object.keys(properties), additionalProperties: false});
  const runs = [
    {temperature: 0, seed: 1},
    {temperature: 1, seed: 2},
    {temperature: 1, seed: 3},
    {temperature: 1, seed: 4},
    {temperature: 1, seed: 5}
  ];

  async function answers(schema: Record<string, unknown>, maxTokens: number): Promise<unknown[]> {
    const out: unknown[] = [];
    for (const run of runs) {
      const res = await api.client.chat.completions.create({model, messages, ...run, max_tokens: maxTokens, response_format: {type: "json_schema", json_schema: {name: "answer", strict: true, schema}}});
      const choice = res.choices[0]!;
      expect({finish: choice.finish_reason, content: choice.message.content}).toMatchObject({finish: "stop"});
      out.push(JSON.parse(choice.message.content!) as unknown);
    }
    return out;
  }

  const expectValid = (schema: Record<string, unknown>, values: unknown[]) => {
    // zod writes draft-07's $schema; the keywords used here mean the same in 2020-12.
    const rest = {...schema};
    delete rest["$schema"];
    const validate = ajv.compile(rest);
    for (const value of values) expect({value, errors: validate(value) ? null : validate.errors}).toEqual({value, errors: null});
  };

  it("integer and number ranges, exclusive bounds, multipleOf powers of ten, array sizes", async () => {
    const schema = strictObject({
      age: {type: "integer", minimum: 0, maximum: 130},
      year: {type: "integer", minimum: 1900, maximum: 2026},
      delta: {type: "integer", exclusiveMinimum: -10, exclusiveMaximum: 10},
      score: {type: "number", minimum: 0.5, maximum: 2.5},
      price: {type: "number", minimum: 0, multipleOf: 0.01},
      hundreds: {type: "integer", minimum: 100, maximum: 1000, multipleOf: 100},
      ratio: {type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1},
      tags: {type: "array", items: {type: "string", maxLength: 4}, minItems: 1, maxItems: 3}
    });
    expectValid(schema, await answers(schema, 300));
  });

  it("patterns and formats: e-mail, date-time, date, time, uuid, ipv4, ipv6, hostname, duration", async () => {
    const schema = strictObject({
      code: {type: "string", pattern: "^[A-Z]{3}-\\d{2,4}$"},
      phone: {type: "string", pattern: "^\\+?[0-9]{2}( [0-9]{3}){2}$"},
      email: {type: "string", format: "email"},
      when: {type: "string", format: "date-time"},
      day: {type: "string", format: "date"},
      at: {type: "string", format: "time"},
      id: {type: "string", format: "uuid"},
      v4: {type: "string", format: "ipv4"},
      v6: {type: "string", format: "ipv6"},
      host: {type: "string", format: "hostname"},
      span: {type: "string", format: "duration"}
    });
    expectValid(schema, await answers(schema, 600));
  });

  it("the SDK's parse() with zodResponseFormat: zod's .int(), .min(), .max() and .regex() hold", async () => {
    const Person = z.object({
      name: z.string().regex(/^[A-Z][a-z]{1,8}$/),
      age: z.number().int().min(0).max(130),
      height: z.number().min(0.5).max(2.5),
      contact: z.string().regex(/^[a-z]{2,8}@[a-z]{2,8}\.(com|org)$/),
      tags: z.array(z.enum(["kind", "brave", "tall"])).min(1).max(2)
    });
    const format = zodResponseFormat(Person, "person");
    for (const run of runs) {
      const res = await api.client.chat.completions.parse({model, messages, ...run, max_tokens: 300, response_format: format});
      const message = res.choices[0]!.message;
      // parse() ran zod over the answer: a value that broke the schema would have thrown.
      expect(message.parsed).toEqual(Person.parse(JSON.parse(message.content!)));
      expectValid(format.json_schema.schema!, [JSON.parse(message.content!)]);
    }
  });

  it("zod's .email() (a format and an unbounded pattern) is accepted, and the pattern is what the grammar holds", async () => {
    // The grammar enforces the pattern zod itself checks; its length is the model's to end,
    // which the tiny model never does inside a string, so this reads the text it stopped in.
    const format = zodResponseFormat(z.object({email: z.string().email()}), "contact");
    const res = await api.client.chat.completions.create({model, messages, temperature: 1, seed: 4, max_tokens: 40, response_format: format});
    const partial = /"email": ?"([^"]*)/.exec(res.choices[0]!.message.content!)![1]!;
    expect(partial.length).toBeGreaterThan(0);
    expect(partial).toMatch(/^[A-Za-z0-9_'+\-.]*$/);
  });

  it("strict tool parameters with bounds and patterns hold in a forced call", async () => {
    const parameters = strictObject({city: {type: "string", pattern: "^[A-Z][a-z]{2,9}$"}, days: {type: "integer", minimum: 1, maximum: 14}});
    for (const run of runs) {
      const res = await api.client.chat.completions.create({model, messages: [{role: "user", content: "Weather?"}], ...run, max_tokens: 80, tools: [{type: "function", function: {name: "forecast", parameters, strict: true}}], tool_choice: "required"});
      const call = res.choices[0]!.message.tool_calls![0]!;
      expectValid(parameters, [JSON.parse(call.type === "function" ? call.function.arguments : "")]);
    }
  });

  it("strict mode keeps OpenAI's rules: an optional property or open object is a 400 naming the path; strict: false accepts both", async () => {
    const optional = {type: "object", properties: {a: {type: "string"}, b: {type: "integer"}}, required: ["a"], additionalProperties: false};
    const open = {type: "object", properties: {a: {type: "string"}}, required: ["a"]};
    const nested = strictObject({inner: {type: "object", properties: {x: {type: "integer"}}, required: ["x"]}});
    const cases = [
      [optional, "response_format.json_schema.schema.required", /'b' is not/],
      [open, "response_format.json_schema.schema.additionalProperties", /additionalProperties: false/],
      [nested, "response_format.json_schema.schema.properties.inner.additionalProperties", /additionalProperties: false/]
    ] as const;
    for (const [schema, param, message] of cases) {
      const strict = api.client.chat.completions.create({model, messages, max_tokens: 8, response_format: {type: "json_schema", json_schema: {name: "s", strict: true, schema}}});
      await expect(strict).rejects.toMatchObject({status: 400, code: "invalid_json_schema", param, message: expect.stringMatching(message) as unknown});
      const loose = await api.client.chat.completions.create({model, messages, max_tokens: 60, temperature: 0, response_format: {type: "json_schema", json_schema: {name: "s", strict: false, schema}}});
      expect(loose.choices[0]!.message.content).toBeTruthy();
    }
  });
});
