import {mkdtempSync, utimesSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {ApiKeys, parseKeysFile} from "../../inference-image/src/http/api-keys.js";

function keysFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "paddock-keys-")), "keys");
  writeFileSync(path, text);
  return path;
}

describe("API keys", () => {
  it("parses one key per line, skipping blanks and comments", () => {
    expect(parseKeysFile("# team a\nsk-1\n\n  sk-2  \r\n")).toEqual(["sk-1", "sk-2"]);
  });

  it("accepts a listed bearer key and gives each key its own tenant id", () => {
    const keys = new ApiKeys(keysFile("sk-alpha\nsk-beta\n"));
    const a = keys.authenticate("Bearer sk-alpha");
    const b = keys.authenticate("bearer sk-beta");
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(a).not.toBe(b);
    expect(keys.authenticate("Bearer sk-alpha")).toBe(a);
  });

  it("rejects a missing or unknown key with 401", () => {
    const keys = new ApiKeys(keysFile("sk-alpha\n"));
    expect(() => keys.authenticate(undefined)).toThrow(expect.objectContaining({status: 401, message: expect.stringMatching(/Missing API key/)}));
    expect(() => keys.authenticate("Bearer sk-alph")).toThrow(expect.objectContaining({status: 401, code: "invalid_api_key"}));
    expect(() => keys.authenticate("Basic c2stYWxwaGE=")).toThrow(expect.objectContaining({status: 401}));
  });

  it("picks up a rotated Secret without a restart", () => {
    let now = 0;
    const path = keysFile("sk-old\n");
    const keys = new ApiKeys(path, 5_000, () => now);
    writeFileSync(path, "sk-new\n");
    utimesSync(path, new Date(), new Date(Date.now() + 10_000));
    expect(() => keys.authenticate("Bearer sk-new")).toThrow();
    now = 6_000;
    expect(keys.authenticate("Bearer sk-new")).toMatch(/^[0-9a-f]+$/);
    expect(() => keys.authenticate("Bearer sk-old")).toThrow();
  });

  it("refuses an empty keys file rather than running open by accident", () => {
    expect(() => new ApiKeys(keysFile("# nobody\n"))).toThrow(/holds no keys/);
  });
});
