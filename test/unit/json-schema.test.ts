import {ApiError} from "../../inference-image/src/core/errors.js";
import {toGrammarSchema} from "../../inference-image/src/openai/json-schema.js";
import {parseChatRequest} from "../../inference-image/src/openai/chat-request.js";

const P = "response_format.json_schema.schema";
const refused = (schema: unknown, strict = true) => {
  try {
    toGrammarSchema(schema, strict, P);
  } catch (e) {
    return e instanceof ApiError ? {status: e.status, param: e.param, message: e.message} : String(e);
  }
  return "accepted";
};

describe("response_format json_schema: the grammar's subset", () => {
  it("translates what the grammar enforces: types, enums, nested objects and arrays, $defs, anyOf, nullable", () => {
    const {schema, dropped} = toGrammarSchema(
      {
        $schema: "https://json-schema.org/draft/2020-12/schema",
        title: "Person",
        type: "object",
        properties: {
          name: {type: "string", maxLength: 20, description: "who"},
          age: {type: ["integer", "null"]},
          role: {enum: ["admin", "user"]},
          tags: {type: "array", items: {type: "string"}, maxItems: 3},
          address: {$ref: "#/definitions/address"},
          born: {type: "string", format: "date"},
          nick: {anyOf: [{type: "string"}, {type: "null"}]},
          meta: {type: ["object", "null"], properties: {k: {type: "boolean"}}}
        },
        required: ["name"],
        additionalProperties: false,
        definitions: {address: {type: "object", properties: {city: {type: "string"}}}}
      },
      false,
      P
    );
    expect(dropped).toEqual([]);
    expect(schema).toEqual({
      type: "object",
      properties: {
        name: {type: "string", maxLength: 20, description: "who"},
        age: {type: ["integer", "null"]},
        role: {enum: ["admin", "user"]},
        tags: {type: "array", items: {type: "string"}, maxItems: 3},
        address: {$ref: "#/$defs/address"},
        born: {type: "string", format: "date"},
        nick: {oneOf: [{type: "string"}, {type: "null"}]},
        meta: {oneOf: [{type: "object", properties: {k: {type: "boolean"}}}, {type: "null"}]}
      },
      additionalProperties: false,
      $defs: {address: {type: "object", properties: {city: {type: "string"}}}}
    });
  });

  it("strict: refuses what it cannot enforce, naming the keyword's path", () => {
    expect(refused({type: "object", properties: {n: {type: "integer", multipleOf: 3}}, required: ["n"], additionalProperties: false})).toMatchObject({status: 400, param: `${P}.properties.n.multipleOf`, message: expect.stringContaining("powers of ten")});
    expect(refused({type: "string", pattern: "^(?=a)"})).toMatchObject({param: `${P}.pattern`, message: expect.stringContaining("lookaround")});
    expect(refused({type: "string", pattern: "^(a)\\1$"})).toMatchObject({param: `${P}.pattern`, message: expect.stringContaining("backreferences")});
    expect(refused({type: "string", pattern: "^a+$", maxLength: 3})).toMatchObject({param: `${P}.maxLength`});
    expect(refused({type: "string", format: "iri"})).toMatchObject({param: `${P}.format`, message: expect.stringContaining("'iri'")});
    expect(refused({type: "integer", minimum: 5, maximum: 4})).toMatchObject({param: P, message: expect.stringContaining("no value can be generated")});
    expect(refused({allOf: [{type: "string"}]})).toMatchObject({param: `${P}.allOf`});
    expect(refused({type: "object", properties: {a: {$ref: "#/$defs/missing"}}})).toMatchObject({param: `${P}.properties.a.$ref`});
    expect(refused({type: "wat"})).toMatchObject({param: `${P}.type`});
    expect(refused({})).toMatchObject({param: P, message: expect.stringContaining("needs a type")});
  });

  it("a pattern beside a format (zod's .email()) is accepted strict: the pattern is enforced, the format reported as not", () => {
    const {schema, dropped} = toGrammarSchema({type: "string", format: "email", pattern: "^[a-z]+@[a-z]+\\.com$"}, true, P);
    expect(schema).toEqual({type: "string", pattern: "^[a-z]+@[a-z]+\\.com$"});
    expect(dropped).toEqual([`${P}: format beside a pattern`]);
  });

  it("not strict: drops what it cannot enforce and keeps the shape", () => {
    const {schema, dropped} = toGrammarSchema({type: "object", properties: {n: {type: "integer", minimum: 0, multipleOf: 2}, s: {type: "string", pattern: "x(?!y)"}}}, false, P);
    expect(schema).toEqual({type: "object", properties: {n: {type: "integer", minimum: 0}, s: {type: "string"}}});
    expect(dropped).toEqual([`${P}.properties.n: multipleOf`, `${P}.properties.s: pattern`]);
  });

  it("reaches requests as their format, for the engine and the cache key", () => {
    const base = {model: "m", messages: [{role: "user", content: "hi"}]};
    expect(parseChatRequest({...base, response_format: {type: "json_object"}}).format).toEqual({kind: "json_object"});
    expect(parseChatRequest({...base, response_format: {type: "text"}}).format).toEqual({kind: "text"});
    const schema = {type: "object", properties: {a: {type: "boolean"}}, required: ["a"], additionalProperties: false};
    expect(parseChatRequest({...base, response_format: {type: "json_schema", json_schema: {name: "p", strict: true, schema}}}).format).toEqual({
      kind: "json_schema",
      name: "p",
      strict: true,
      schema: {type: "object", properties: {a: {type: "boolean"}}, additionalProperties: false}
    });
  });
});

describe("json_schema translation: what strict promises (issue #26)", () => {
  it("distributes properties beside anyOf into each branch, so the branch generated also has them", () => {
    const {schema} = toGrammarSchema(
      {type: "object", properties: {id: {type: "integer"}}, required: ["id"], anyOf: [{properties: {cat: {type: "string"}}, required: ["cat"]}, {properties: {dog: {type: "boolean"}}}]},
      false,
      P
    );
    expect(schema).toEqual({
      oneOf: [
        {type: "object", properties: {id: {type: "integer"}, cat: {type: "string"}}},
        {type: "object", properties: {id: {type: "integer"}, dog: {type: "boolean"}}}
      ]
    });
  });

  it("accepts branches that only require some of the parent's properties (valid JSON Schema; every property is generated)", () => {
    const {schema} = toGrammarSchema({type: "object", properties: {a: {type: "string"}, b: {type: "string"}}, anyOf: [{required: ["a"]}, {required: ["b"]}]}, false, P);
    expect(schema).toEqual({oneOf: [{type: "object", properties: {a: {type: "string"}, b: {type: "string"}}}, {type: "object", properties: {a: {type: "string"}, b: {type: "string"}}}]});
  });

  it("refuses, in strict mode, a required name that is not a property (it could not be generated); lenient reports it dropped", () => {
    expect(refused({type: "object", properties: {a: {type: "string"}}, required: ["a", "b"], additionalProperties: false})).toEqual({status: 400, param: `${P}.required`, message: expect.stringMatching(/'b' is required but not among the properties/)});
    expect(toGrammarSchema({type: "object", properties: {a: {type: "string"}}, required: ["a", "b"]}, false, P).dropped).toEqual([`${P}: required b`]);
  });

  it("strict has OpenAI's rules: every property required, additionalProperties false, naming the path", () => {
    const person = (extra: object) => ({type: "object", properties: {pet: {type: "object", properties: {name: {type: "string"}, age: {type: "integer"}}, ...extra}}, required: ["pet"], additionalProperties: false});
    expect(refused(person({required: ["name"], additionalProperties: false}))).toEqual({status: 400, param: `${P}.properties.pet.required`, message: expect.stringContaining("'age' is not")});
    expect(refused(person({required: ["name", "age"]}))).toEqual({status: 400, param: `${P}.properties.pet.additionalProperties`, message: expect.stringContaining("additionalProperties: false")});
    expect(refused(person({required: ["name", "age"], additionalProperties: false}))).toBe("accepted");
    expect(refused(person({required: ["name"]}), false)).toBe("accepted");
  });

  it("keeps the bounds, patterns and formats its rules enforce (schema-rules.ts)", () => {
    const schema = {
      type: "object",
      properties: {age: {type: "integer", minimum: 0, maximum: 130}, price: {type: "number", exclusiveMinimum: 0, multipleOf: 0.01}, handle: {type: "string", pattern: "^@\\w+$"}, mail: {type: "string", format: "email"}},
      required: ["age", "price", "handle", "mail"],
      additionalProperties: false
    };
    const {schema: out, dropped} = toGrammarSchema(schema, true, P);
    expect(dropped).toEqual([]);
    expect(out["properties"]).toEqual(schema.properties);
  });
});
