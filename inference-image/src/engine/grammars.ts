import type {GbnfJsonSchema, Llama, LlamaGrammar} from "node-llama-cpp";
import type {ResponseFormat} from "../core/request.js";
import {JSON_OBJECT_GRAMMAR, JSON_OBJECT_STOP} from "../openai/json-grammar.js";
import {spliceRules, withRules} from "../openai/schema-rules.js";

/** Compiled response-format grammars kept; older ones are compiled again when asked for. */
export const MAX_GRAMMARS = 64;

/** Grammars are compiled once per format and kept (a bounded number of schemas). */
export class GrammarCache {
  readonly #grammars = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  /** The grammar enforcing `format`; undefined for free text. Rejects when the schema cannot be compiled. */
  grammarFor(format: ResponseFormat): Promise<LlamaGrammar> | undefined {
    if (format.kind === "text") return undefined;
    const key = format.kind === "json_object" ? "json" : JSON.stringify(format.schema);
    let grammar = this.#grammars.get(key);
    if (!grammar) {
      grammar = format.kind === "json_object" ? this.#jsonObjectGrammar() : this.#schemaGrammar(format.schema);
      if (this.#grammars.size >= MAX_GRAMMARS) this.#grammars.delete(this.#grammars.keys().next().value!);
      this.#grammars.set(key, grammar);
      grammar.catch(() => this.#grammars.delete(key));
    }
    return grammar;
  }

  #jsonObjectGrammar(): Promise<LlamaGrammar> {
    return this.llama.createGrammar({grammar: JSON_OBJECT_GRAMMAR, stopGenerationTriggers: [JSON_OBJECT_STOP], trimWhitespaceSuffix: true});
  }

  /**
   * node-llama-cpp's grammar for the schema, with our rules spliced in for the keywords it
   * does not enforce (bounds, patterns, formats: schema-rules.ts).
   */
  async #schemaGrammar(schema: Record<string, unknown>): Promise<LlamaGrammar> {
    const {schema: placeheld, rules} = withRules(schema);
    // A client's schema, translated and checked by json-schema.ts: the subset GbnfJsonSchema describes.
    const json = await this.llama.createGrammarForJsonSchema<GbnfJsonSchema>(placeheld as GbnfJsonSchema);
    if (rules.length === 0) return json;
    return this.llama.createGrammar({grammar: spliceRules(json.grammar, rules), stopGenerationTriggers: json.stopGenerationTriggers, trimWhitespaceSuffix: json.trimWhitespaceSuffix});
  }
}
