import OpenAI from "openai";
import {ServerProcess} from "../../dev/processes/server.js";
import {OpenApiChecker} from "./openapi.js";

/**
 * A server on the tiny model for one describe block, and an `openai` client whose every
 * response is checked against OpenAI's OpenAPI document: after each test the responses it
 * got must have broken no schema (and, with `everyTestChecks`, there must have been some).
 */
export function useCheckedServer(env: Record<string, string>, options: {everyTestChecks?: boolean} = {}): {server: ServerProcess; client: OpenAI} {
  const checker = new OpenApiChecker();
  const ctx = {} as {server: ServerProcess; client: OpenAI};
  beforeAll(async () => {
    ctx.server = await ServerProcess.start(env);
    ctx.client = new OpenAI({baseURL: `${ctx.server.url}/v1`, apiKey: "unused", maxRetries: 0, fetch: checker.fetch});
  });
  afterAll(() => ctx.server.stop());
  let checkedBefore = 0;
  beforeEach(() => (checkedBefore = checker.checked));
  afterEach(async () => {
    expect(await checker.settle()).toEqual([]);
    if (options.everyTestChecks) expect(checker.checked).toBeGreaterThan(checkedBefore);
  });
  return ctx;
}
