import {llmServiceCrd} from "../../operator/src/api/crd.js";

type Schema = {description?: string; properties?: Record<string, Schema>; items?: Schema};

/** Every field's path without a description, as `kubectl explain` would show it empty. */
function undocumented(schema: Schema, path: string): string[] {
  const missing: string[] = [];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const p = `${path}.${name}`;
    if (!child.description) missing.push(p);
    missing.push(...undocumented(child, p), ...(child.items ? undocumented(child.items, `${p}[]`) : []));
  }
  return missing;
}

describe("kubectl explain llms", () => {
  const root = (llmServiceCrd() as {spec: {versions: Array<{schema: {openAPIV3Schema: Schema}}>}}).spec.versions[0]!.schema.openAPIV3Schema;

  it("describes every spec field", () => {
    expect(undocumented(root.properties!["spec"]!, "spec")).toEqual([]);
  });

  it("states the default of every spec field that has one", () => {
    const withoutDefault: string[] = [];
    const walk = (s: Schema & {default?: unknown}, path: string) => {
      for (const [name, child] of Object.entries(s.properties ?? {})) {
        const c = child as Schema & {default?: unknown};
        if (c.default !== undefined && !/Defaults? to|Defaults to|default/i.test(c.description ?? "")) withoutDefault.push(`${path}.${name}`);
        walk(c, `${path}.${name}`);
      }
    };
    walk(root.properties!["spec"]!, "spec");
    expect(withoutDefault).toEqual([]);
  });
});
