/**
 * JSON mode's promise is a body that parses. The grammar guarantees every prefix of the
 * output can still become valid JSON; when max_tokens ends generation first, this gives
 * the shortest text that completes it (closing the open string, value, arrays and
 * objects). finish_reason stays "length", so a client still sees it was cut. Pure: feed
 * it the output as it is produced.
 */
export class JsonCloser {
  /** Open containers, innermost last. */
  readonly #stack: Array<"{" | "["> = [];
  /** Where the lexer is. */
  #state: "value" | "key" | "colon" | "after" | "string" | "key-string" | "number" | "literal" = "value";
  #escape = false;
  /** Hex digits still owed by a \u escape. */
  #hex = 0;
  #literal = "";
  #number = "";
  #started = false;

  push(text: string): void {
    for (const ch of text) this.#step(ch);
  }

  /** The text that makes what was pushed a valid JSON object ("{}" when nothing was). */
  closing(): string {
    if (!this.#started) return "{}";
    let out = "";
    switch (this.#state) {
      case "string":
        out += `${this.#escape ? "\\" : ""}${"0".repeat(this.#hex)}"`;
        break;
      case "key-string":
        out += `${this.#escape ? "\\" : ""}${"0".repeat(this.#hex)}":null`;
        break;
      case "colon":
        out += ":null";
        break;
      case "number":
        out += /[0-9]$/.test(this.#number) ? "" : "0";
        break;
      case "literal":
        out += ["true", "false", "null"].find((w) => w.startsWith(this.#literal))!.slice(this.#literal.length);
        break;
      case "value":
        // Right after '[' nothing is owed; after ',' or ':' a value is.
        if (!this.#lastWasOpen) out += "null";
        break;
      case "key":
        // After '{' nothing is owed; after ',' a member is: an empty key keeps it valid.
        if (!this.#lastWasOpen) out += '"":null';
        break;
      case "after":
        break;
    }
    for (let i = this.#stack.length - 1; i >= 0; i--) out += this.#stack[i] === "{" ? "}" : "]";
    return out;
  }

  #lastWasOpen = false;

  #step(ch: string): void {
    const s = this.#state;
    if (s === "string" || s === "key-string") {
      if (this.#hex > 0) this.#hex--;
      else if (this.#escape) {
        this.#escape = false;
        if (ch === "u") this.#hex = 4;
      }
      else if (ch === "\\") this.#escape = true;
      else if (ch === '"') this.#state = s === "string" ? "after" : "colon";
      return;
    }
    if (s === "number") {
      if (/[0-9eE.+-]/.test(ch)) {
        this.#number += ch;
        return;
      }
      this.#state = "after";
      return this.#step(ch);
    }
    if (s === "literal") {
      if (/[a-z]/.test(ch)) {
        this.#literal += ch;
        return;
      }
      this.#state = "after";
      return this.#step(ch);
    }
    if (/\s/.test(ch)) return;
    this.#started = true;
    const opened = this.#lastWasOpen;
    this.#lastWasOpen = false;
    if (s === "colon") {
      if (ch === ":") this.#state = "value";
      return;
    }
    if (s === "key") {
      if (ch === '"') this.#state = "key-string";
      else if (ch === "}") this.#close();
      return;
    }
    if (s === "value") {
      if (ch === "{" || ch === "[") {
        this.#stack.push(ch);
        this.#state = ch === "{" ? "key" : "value";
        this.#lastWasOpen = true;
      } else if (ch === '"') this.#state = "string";
      else if (ch === "]" && opened) this.#close();
      else if (/[-0-9]/.test(ch)) {
        this.#state = "number";
        this.#number = ch;
      } else if (/[tfn]/.test(ch)) {
        this.#state = "literal";
        this.#literal = ch;
      }
      return;
    }
    // after a value
    if (ch === ",") this.#state = this.#stack.at(-1) === "{" ? "key" : "value";
    else if (ch === "}" || ch === "]") this.#close();
  }

  #close(): void {
    this.#stack.pop();
    this.#state = "after";
  }
}
