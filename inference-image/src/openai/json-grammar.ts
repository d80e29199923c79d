/**
 * The grammar of `response_format: {type: "json_object"}`: any JSON object. It is llama.cpp's
 * grammars/json.gbnf (MIT), kept here rather than read through node-llama-cpp's
 * `getGrammarFor("json")`: for a local build, node-llama-cpp looks for that file in the
 * llama.cpp checkout it compiled from, which an install restored from the build cache (CI,
 * the image) does not carry, and every JSON-mode request failed with "Grammars folder not found".
 */
export const JSON_OBJECT_GRAMMAR = String.raw`root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
`;

/**
 * Four newlines in a row end a JSON-mode reply: the grammar's whitespace lets a model that
 * never closes its object pad forever (node-llama-cpp's getGrammarFor uses the same trigger).
 */
export const JSON_OBJECT_STOP = "\n\n\n\n";
